//! The pg_avatar image pipeline, free of PostgreSQL so it can be tested,
//! fuzzed and benchmarked on its own.
//!
//! Two operations share one path (decode, crop the centre square, resize,
//! turn upright, encode JPEG):
//! - [`Pipeline::normalise`] makes the stored master from an upload;
//! - [`Pipeline::render`] makes a served size from the master, and
//!   [`Pipeline::render_as`] the same in PNG or WebP.

mod complete;
pub mod decode;
pub mod encode;
mod error;
pub mod geometry;
pub mod placeholder;
mod rendition;
#[cfg(feature = "samples")]
pub mod samples;
pub mod scale;
mod size;

pub use avatar_contract::{Class, Crop};
pub use encode::Format;
pub use error::Error;
pub use placeholder::Placeholder;
pub use rendition::{Lookup, Master, Rendition, Store};
pub use size::{quantise, render_source, MAX_SIZE, MEZZANINE};

use sha1::{Digest, Sha1};

/// What an untrusted input may cost before a single pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_input_bytes: usize,
    /// Checked against the dimensions in the header, before decoding.
    pub max_input_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: avatar_contract::limits::DEFAULT_MAX_INPUT_BYTES,
            max_input_pixels: avatar_contract::limits::DEFAULT_MAX_INPUT_PIXELS,
        }
    }
}

impl Limits {
    /// For a copy fetched from another Libravatar provider: it was asked
    /// for at 512 px, so anything much larger is refused undecoded.
    pub const FALLBACK: Limits = Limits {
        max_input_bytes: avatar_contract::limits::FALLBACK_MAX_BYTES,
        max_input_pixels: avatar_contract::limits::FALLBACK_MAX_PIXELS,
    };

    /// The tighter of two limits, field by field.
    pub fn min(self, other: Limits) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes.min(other.max_input_bytes),
            max_input_pixels: self.max_input_pixels.min(other.max_input_pixels),
        }
    }
}

/// A square JPEG.
#[derive(Debug, Clone)]
pub struct Avatar {
    pub jpeg: Vec<u8>,
    pub side: u32,
    /// The size the input was decoded at: smaller than the input when the
    /// JPEG decoder shrank it on load.
    pub decoded: (u32, u32),
}

impl Avatar {
    /// SHA-1 of the JPEG bytes as 40 lower-case hex digits: XMPP's avatar id,
    /// and pg_avatar's ETag and URL version.
    pub fn sha1_hex(&self) -> String {
        sha1_hex(&self.jpeg)
    }
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Square 8-bit RGB pixels, before encoding.
pub struct Pixels {
    pub rgb: Vec<u8>,
    pub side: u32,
    /// As in [`Avatar::decoded`].
    pub decoded: (u32, u32),
}

/// How large the output square is, given the upright input's shorter side.
#[derive(Debug, Clone, Copy)]
enum Fit {
    /// Shrink to at most this side, never enlarge: the master of an upload,
    /// of the user's crop or else the centre square.
    AtMost(u32, Option<Crop>),
    /// Exactly this side, enlarging if need be, from a stored master:
    /// clients rely on the dimensions.
    Exactly(u32),
}

pub struct Pipeline<'a> {
    pub quality: u8,
    pub limits: Limits,
    /// Called between expensive stages; inside PostgreSQL it services
    /// cancel requests and `statement_timeout` (by unwinding).
    pub checkpoint: &'a dyn Fn(),
}

impl Default for Pipeline<'_> {
    fn default() -> Self {
        Pipeline {
            quality: 85,
            limits: Limits::default(),
            checkpoint: &|| {},
        }
    }
}

impl Pipeline<'_> {
    /// The master for an upload: upright, flattened onto white, centre
    /// square, at most `max_side` pixels, JPEG.
    pub fn normalise(&self, upload: &[u8], max_side: u32) -> Result<Avatar, Error> {
        self.normalise_cropped(upload, max_side, None)
    }

    /// The same of the square the user chose, in pixels of the upright
    /// image; [`Error::Crop`], with the upright size, if it is not inside.
    pub fn normalise_cropped(
        &self,
        upload: &[u8],
        max_side: u32,
        crop: Option<Crop>,
    ) -> Result<Avatar, Error> {
        self.square(upload, Fit::AtMost(max_side.clamp(1, MAX_SIZE), crop))
    }

    /// A rendition of a master at exactly `side` pixels (already quantised).
    pub fn render(&self, master: &[u8], side: u32) -> Result<Avatar, Error> {
        self.encode(self.render_pixels(master, side)?)
    }

    /// A rendition in `format`: the bytes `avatar_get(id, size, format)`
    /// serves. JPEG is the same as [`Pipeline::render`].
    pub fn render_as(&self, master: &[u8], side: u32, format: Format) -> Result<Vec<u8>, Error> {
        let pixels = self.render_pixels(master, side)?;
        (self.checkpoint)();
        encode::encode(format, &pixels.rgb, pixels.side, self.quality)
    }

    /// What [`Pipeline::render`] encodes: lets the benchmark judge the
    /// resampling apart from JPEG's own loss.
    pub fn render_pixels(&self, master: &[u8], side: u32) -> Result<Pixels, Error> {
        if !(1..=MAX_SIZE).contains(&side) {
            return Err(Error::SizeOutOfRange(i64::from(side)));
        }
        self.square_pixels(master, Fit::Exactly(side))
    }

    fn square(&self, input: &[u8], fit: Fit) -> Result<Avatar, Error> {
        self.encode(self.square_pixels(input, fit)?)
    }

    fn encode(&self, pixels: Pixels) -> Result<Avatar, Error> {
        Ok(Avatar {
            jpeg: encode::jpeg(&pixels.rgb, pixels.side, self.quality)?,
            side: pixels.side,
            decoded: pixels.decoded,
        })
    }

    fn square_pixels(&self, input: &[u8], fit: Fit) -> Result<Pixels, Error> {
        let (shrink, chosen) = match fit {
            Fit::AtMost(side, crop) => (
                decode::Shrink {
                    side,
                    square: crop.map(|c| c.size),
                },
                crop,
            ),
            Fit::Exactly(side) => (decode::Shrink::to(side), None),
        };
        // An upload is looked at whole; a master or mezzanine, which
        // pg_avatar wrote itself, by its container.
        let scrutiny = match fit {
            Fit::AtMost(..) => decode::Scrutiny::Upload,
            Fit::Exactly(_) => decode::Scrutiny::Stored,
        };
        let decoded = decode::decode(input, &self.limits, self.checkpoint, Some(shrink), scrutiny)?;
        let (crop, cropped_side) = match chosen {
            Some(chosen) => {
                let region = chosen_region(&decoded, chosen)?;
                (region, chosen.size)
            }
            None => {
                let centre =
                    geometry::centre_square(decoded.width, decoded.height, decoded.orientation);
                (centre.into(), centre.side)
            }
        };
        let side = match fit {
            Fit::AtMost(max, _) => cropped_side.min(max),
            Fit::Exactly(side) => side,
        };
        let decoded_size = (decoded.width, decoded.height);
        let rgb = scale::crop_resize(&decoded.rgb, decoded.width, decoded.height, crop, side)?;
        drop(decoded.rgb);
        (self.checkpoint)();
        let rgb = upright(rgb, side, decoded.orientation)?;
        Ok(Pixels {
            rgb,
            side,
            decoded: decoded_size,
        })
    }
}

/// Where the user's square, chosen on the upright image at its full size,
/// lies in the decoded pixels, which may have been shrunk on load.
fn chosen_region(decoded: &decode::Decoded, chosen: Crop) -> Result<scale::Region, Error> {
    let (width, height) = decoded.full;
    let (upright_w, upright_h) = geometry::upright_size(width, height, decoded.orientation);
    let chosen = chosen.check(upright_w, upright_h).map_err(Error::Crop)?;
    let square = geometry::upright_square(
        width,
        height,
        decoded.orientation,
        chosen.x,
        chosen.y,
        chosen.size,
    );
    let sx = f64::from(decoded.width) / f64::from(width);
    let sy = f64::from(decoded.height) / f64::from(height);
    let (left, top) = (f64::from(square.left) * sx, f64::from(square.top) * sy);
    // A shrunk side is rounded up, so the two scales differ by a fraction
    // of a pixel, and a square flush with an edge may land past it by a
    // rounding error: it is kept inside the decoded pixels.
    let room = (f64::from(decoded.width) - left).min(f64::from(decoded.height) - top);
    Ok(scale::Region {
        left,
        top,
        side: (f64::from(square.side) * sx.min(sy)).min(room),
    })
}

fn upright(
    rgb: Vec<u8>,
    side: u32,
    orientation: image::metadata::Orientation,
) -> Result<Vec<u8>, Error> {
    if orientation == image::metadata::Orientation::NoTransforms {
        return Ok(rgb);
    }
    // Turning makes a new buffer of the pixels, allocated infallibly.
    decode::foresee(rgb.len())?;
    let buffer = image::RgbImage::from_raw(side, side, rgb)
        .ok_or_else(|| Error::Internal("resized buffer has the wrong length".into()))?;
    let mut image = image::DynamicImage::ImageRgb8(buffer);
    image.apply_orientation(orientation);
    Ok(image.into_rgb8().into_raw())
}

#[cfg(test)]
mod tests;
