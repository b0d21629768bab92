//! From untrusted bytes to upright-able RGB pixels, within limits.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::{Error, Limits};

/// Decoded pixels as stored in the file: 8-bit RGB with any alpha already
/// composited onto white, plus the orientation that makes them upright.
pub struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

const ACCEPTED: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Bmp,
];

/// Decodes `input`. With `shrink_to`, a JPEG whose centre square is at
/// least 8x that side is decoded at a reduced scale (see [`shrink_factor`]).
pub fn decode(
    input: &[u8],
    limits: &Limits,
    checkpoint: &dyn Fn(),
    shrink_to: Option<u32>,
) -> Result<Decoded, Error> {
    if input.is_empty() {
        return Err(Error::Empty);
    }
    if input.len() > limits.max_input_bytes {
        return Err(Error::TooManyBytes {
            bytes: input.len(),
            limit: limits.max_input_bytes,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| Error::Internal(e.to_string()))?;
    // A second guard behind the header check below: decoders that honour it
    // refuse any allocation past what the pixel limit allows (up to 8 bytes
    // a pixel, for 16-bit RGBA), whatever else the file claims.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(allocation_budget(limits));
    reader.limits(decoder_limits);
    let format = reader.format().ok_or(Error::UnknownFormat)?;
    if !ACCEPTED.contains(&format) {
        return Err(Error::UnsupportedFormat(
            format!("{format:?}").to_uppercase(),
        ));
    }
    // Building the decoder parses only the header, so the pixel limit is
    // enforced before any buffer sized by the (untrusted) dimensions exists.
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::ZeroDimension { width, height });
    }
    if u64::from(width) * u64::from(height) > limits.max_input_pixels {
        return Err(Error::TooManyPixels {
            width,
            height,
            limit: limits.max_input_pixels,
        });
    }
    // A damaged EXIF block must not cost the user their upload: show it as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    checkpoint();
    let factor = shrink_to.map_or(1, |side| shrink_factor(width.min(height), side));
    if format == ImageFormat::Jpeg && factor > 1 {
        drop(decoder);
        if let Some(decoded) =
            decode_jpeg_scaled(input, width, height, factor, orientation, limits)?
        {
            checkpoint();
            return Ok(decoded);
        }
        return decode_full(
            ImageReader::with_format(Cursor::new(input), format).into_decoder()?,
            orientation,
            checkpoint,
        );
    }
    decode_full(decoder, orientation, checkpoint)
}

fn decode_full(
    decoder: impl ImageDecoder,
    orientation: Orientation,
    checkpoint: &dyn Fn(),
) -> Result<Decoded, Error> {
    let image = DynamicImage::from_decoder(decoder)?;
    checkpoint();
    let (width, height) = (image.width(), image.height());
    Ok(Decoded {
        rgb: flatten_onto_white(image),
        width,
        height,
        orientation,
    })
}

/// The most any decoder may allocate for one input.
pub fn allocation_budget(limits: &Limits) -> u64 {
    limits
        .max_input_pixels
        .saturating_mul(8)
        .saturating_add(limits.max_input_bytes as u64)
        .saturating_add(16 << 20)
}

/// How much a JPEG may be shrunk while decoding: the DCT yields 1/4 or 1/8
/// scale for a fraction of the IDCT, resize work and memory. Like libvips,
/// it stops while at least twice the output side remains, so the final
/// Lanczos pass still has real detail to filter. No 1/2: the scaling
/// decoder's entropy decoding is slower than the full decoder's, and at 1/2
/// that costs more than it saves (benches/pipeline.rs: 1.08x at 512 px).
pub fn shrink_factor(square_side: u32, output_side: u32) -> u32 {
    [8, 4]
        .into_iter()
        .find(|&f| square_side / f >= 2 * output_side)
        .unwrap_or(1)
}

/// A scaled decode, or `None` where only the general decoder copes (CMYK,
/// or a JPEG variant this decoder does not support).
fn decode_jpeg_scaled(
    input: &[u8],
    width: u32,
    height: u32,
    factor: u32,
    orientation: Orientation,
    limits: &Limits,
) -> Result<Option<Decoded>, Error> {
    use jpeg_decoder::{Decoder, Error as JpegError, PixelFormat};
    let failed = |e: JpegError| match e {
        JpegError::Unsupported(_) => Ok(None),
        other => Err(Error::Corrupt(other.to_string())),
    };
    let mut jpeg = Decoder::new(input);
    jpeg.set_max_decoding_buffer_size(
        usize::try_from(allocation_budget(limits)).unwrap_or(usize::MAX),
    );
    // Dimensions were checked against the pixel limit already; JPEG's are 16-bit.
    let request = (
        width.div_ceil(factor) as u16,
        height.div_ceil(factor) as u16,
    );
    let (w, h) = match jpeg.scale(request.0, request.1) {
        Ok(size) => size,
        Err(e) => return failed(e),
    };
    let grey = match jpeg.info().map(|info| info.pixel_format) {
        Some(PixelFormat::RGB24) => false,
        Some(PixelFormat::L8) => true,
        _ => return Ok(None),
    };
    let pixels = match jpeg.decode() {
        Ok(pixels) => pixels,
        Err(e) => return failed(e),
    };
    let rgb = if grey {
        pixels.iter().flat_map(|&l| [l, l, l]).collect()
    } else {
        pixels
    };
    let (width, height) = (u32::from(w), u32::from(h));
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(Error::Corrupt(
            "JPEG decoded to the wrong number of pixels".into(),
        ));
    }
    Ok(Some(Decoded {
        rgb,
        width,
        height,
        orientation,
    }))
}

/// 8-bit RGB, with transparent pixels shown over white as a browser would.
fn flatten_onto_white(image: DynamicImage) -> Vec<u8> {
    if !image.color().has_alpha() {
        return image.into_rgb8().into_raw();
    }
    // Compacts RGBA into RGB in place: pixel i is read whole before its
    // three bytes are written at 3i, which never passes the unread 4(i+1).
    let mut buf = image.into_rgba8().into_raw();
    let pixels = buf.len() / 4;
    for i in 0..pixels {
        let [r, g, b, a] = [buf[4 * i], buf[4 * i + 1], buf[4 * i + 2], buf[4 * i + 3]];
        let a = u32::from(a);
        let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        buf[3 * i] = blend(r);
        buf[3 * i + 1] = blend(g);
        buf[3 * i + 2] = blend(b);
    }
    buf.truncate(pixels * 3);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn shrink_leaves_at_least_twice_the_output() {
        for (side, out, factor) in [
            (2048, 32, 8),
            (2048, 128, 8),
            (2048, 129, 4),
            (2048, 256, 4),
            (2048, 512, 1),
            (2048, 1024, 1),
            (100, 64, 1),
            (2048, 2048, 1),
        ] {
            assert_eq!(shrink_factor(side, out), factor, "{side} -> {out}");
            assert!(side / factor >= 2 * out || factor == 1);
        }
    }

    #[test]
    fn alpha_lands_on_white() {
        let img = RgbaImage::from_fn(4, 1, |x, _| match x {
            0 => Rgba([0, 0, 0, 0]),     // fully transparent black: white
            1 => Rgba([0, 0, 0, 255]),   // opaque black stays black
            2 => Rgba([255, 0, 0, 128]), // half red: pink
            _ => Rgba([10, 20, 30, 255]),
        });
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(img));
        assert_eq!(rgb, vec![255, 255, 255, 0, 0, 0, 255, 127, 127, 10, 20, 30]);
    }

    #[test]
    fn sixteen_bit_grey_alpha_is_flattened() {
        let img =
            image::ImageBuffer::<image::LumaA<u16>, _>::from_pixel(2, 2, image::LumaA([0, 0]));
        assert_eq!(
            flatten_onto_white(DynamicImage::ImageLumaA16(img)),
            vec![255; 12]
        );
    }
}
