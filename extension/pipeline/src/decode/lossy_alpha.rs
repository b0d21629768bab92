//! A still lossy WebP with an alpha channel, in two steps.
//!
//! image-webp decodes such a file into RGBA while it still holds the YUV
//! frame and a whole ARGB image for the alpha plane: ten bytes a pixel, five
//! times the file's 8-bit RGB. Here the colour and the alpha are each given
//! to image-webp as a file of their own (the RIFF container is only framing),
//! and the alpha is composited onto white as soon as it is known: at most
//! seven bytes a pixel, under twice the RGBA pixels.

use std::io::Cursor;

use image::metadata::Orientation;

use super::{blend, buffer, check_dimensions, foresee, rgb_len, Decoded};
use crate::{Error, Limits};

/// The parts of a still, lossy WebP with alpha.
pub struct Still<'a> {
    vp8: &'a [u8],
    /// The ALPH chunk: a header byte, then the alpha plane.
    alph: &'a [u8],
    width: u32,
    height: u32,
    exif: Option<&'a [u8]>,
}

impl<'a> Still<'a> {
    /// The file's parts if it is a still lossy WebP with alpha; anything
    /// else (no alpha, lossless, animated) is image-webp's to decode.
    pub fn find(input: &'a [u8]) -> Option<Still<'a>> {
        let riff = input.get(12..)?;
        let mut chunks = Chunks(riff);
        let (fourcc, vp8x) = chunks.next()?;
        if fourcc != *b"VP8X" || vp8x.len() < 10 {
            return None;
        }
        let flags = vp8x[0];
        // Alpha, and no animation.
        if flags & 0x10 == 0 || flags & 0x02 != 0 {
            return None;
        }
        let width = 1 + u32::from_le_bytes([vp8x[4], vp8x[5], vp8x[6], 0]);
        let height = 1 + u32::from_le_bytes([vp8x[7], vp8x[8], vp8x[9], 0]);
        let (mut vp8, mut alph, mut exif) = (None, None, None);
        for (fourcc, data) in chunks {
            match &fourcc {
                b"VP8 " => vp8 = Some(data),
                b"ALPH" => alph = Some(data),
                b"EXIF" => exif = Some(data),
                _ => {}
            }
        }
        Some(Still {
            vp8: vp8?,
            alph: alph?,
            width,
            height,
            exif,
        })
    }
}

/// RIFF chunks: four-character code, little-endian length, data padded to
/// an even length. Stops at the first chunk that does not fit.
struct Chunks<'a>(&'a [u8]);

impl<'a> Iterator for Chunks<'a> {
    type Item = ([u8; 4], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let fourcc: [u8; 4] = self.0.get(..4)?.try_into().ok()?;
        let len = u32::from_le_bytes(self.0.get(4..8)?.try_into().ok()?) as usize;
        let data = self.0.get(8..8usize.checked_add(len)?)?;
        self.0 = self.0.get((8 + len + (len & 1)).min(self.0.len())..)?;
        Some((fourcc, data))
    }
}

/// One chunk framed as a whole WebP file.
fn framed(fourcc: &[u8; 4], data: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let len: usize = data.iter().map(|d| d.len()).sum();
    let padded = len + (len & 1);
    let mut file = Vec::new();
    file.try_reserve_exact(20 + padded)
        .map_err(|_| Error::OutOfMemory { bytes: 20 + padded })?;
    let riff_len =
        u32::try_from(12 + padded).map_err(|_| Error::Corrupt("WebP too long".into()))?;
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&riff_len.to_le_bytes());
    file.extend_from_slice(b"WEBP");
    file.extend_from_slice(fourcc);
    file.extend_from_slice(&(len as u32).to_le_bytes());
    for part in data {
        file.extend_from_slice(part);
    }
    if len & 1 == 1 {
        file.push(0);
    }
    Ok(file)
}

fn decoder(file: &[u8]) -> Result<image_webp::WebPDecoder<Cursor<&[u8]>>, Error> {
    image_webp::WebPDecoder::new(Cursor::new(file)).map_err(webp_error)
}

fn webp_error(e: image_webp::DecodingError) -> Error {
    match e {
        image_webp::DecodingError::IoError(io) => Error::Corrupt(format!("truncated ({io})")),
        other => Error::Corrupt(other.to_string()),
    }
}

pub fn decode(still: &Still<'_>, limits: &Limits, checkpoint: &dyn Fn()) -> Result<Decoded, Error> {
    let (width, height) = (still.width, still.height);
    check_dimensions(width, height, limits)?;
    let orientation = still
        .exif
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let pixels = rgb_len(width, height)? / 3;

    // The colour: image-webp holds the YUV frame, a byte and a half a pixel,
    // beside the RGB it writes into.
    let colour = framed(b"VP8 ", &[still.vp8])?;
    let mut vp8 = decoder(&colour)?;
    if vp8.dimensions() != (width, height) || vp8.has_alpha() {
        return Err(Error::Corrupt(
            "the VP8 frame does not match the header".into(),
        ));
    }
    let mut rgb = buffer(rgb_len(width, height)?)?;
    foresee(pixels + pixels / 2)?;
    vp8.read_image(&mut rgb).map_err(webp_error)?;
    drop(vp8);
    drop(colour);
    checkpoint();

    let (&header, plane) = still
        .alph
        .split_first()
        .ok_or_else(|| Error::Corrupt("an empty alpha chunk".into()))?;
    let filtering = (header >> 2) & 3;
    let alpha = match header & 3 {
        // A plane of bytes, as is.
        0 => {
            let mut alpha = buffer(pixels)?;
            alpha.copy_from_slice(
                plane
                    .get(..pixels)
                    .ok_or_else(|| Error::Corrupt("truncated alpha plane".into()))?,
            );
            Plane {
                bytes: alpha,
                stride: 1,
                at: 0,
            }
        }
        // A lossless image whose green channel is the alpha, without the
        // lossless header: given one, with the dimensions the file declares.
        1 => {
            let header = (width - 1) | (height - 1) << 14 | 1 << 28;
            let image = framed(b"VP8L", &[&[0x2f], &header.to_le_bytes(), plane])?;
            let mut lossless = decoder(&image)?;
            if lossless.dimensions() != (width, height) || !lossless.has_alpha() {
                return Err(Error::Corrupt(
                    "the alpha plane does not match the header".into(),
                ));
            }
            let mut rgba = buffer(pixels * 4)?;
            lossless.read_image(&mut rgba).map_err(webp_error)?;
            Plane {
                bytes: rgba,
                stride: 4,
                at: 1,
            }
        }
        _ => return Err(Error::Corrupt("an unknown alpha compression".into())),
    };
    let mut alpha = alpha;
    alpha.unfilter(filtering, width as usize, height as usize);
    checkpoint();
    for (i, pixel) in rgb.chunks_exact_mut(3).enumerate() {
        let blended = blend([pixel[0], pixel[1], pixel[2]], alpha.get(i));
        pixel.copy_from_slice(&blended);
    }
    Ok(Decoded {
        rgb,
        width,
        height,
        orientation,
    })
}

/// Alpha values at every `stride`-th byte from `at`.
struct Plane {
    bytes: Vec<u8>,
    stride: usize,
    at: usize,
}

impl Plane {
    fn get(&self, i: usize) -> u8 {
        self.bytes[i * self.stride + self.at]
    }

    fn set(&mut self, i: usize, value: u8) {
        self.bytes[i * self.stride + self.at] = value;
    }

    /// Undoes the spatial filter (WebP container spec, "Alpha"): each value
    /// was stored as its difference from a prediction by its left, upper or
    /// both neighbours, which are already restored when it is reached.
    fn unfilter(&mut self, method: u8, width: usize, height: usize) {
        if method == 0 {
            return;
        }
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                let left = || self.get(i - 1);
                let up = || self.get(i - width);
                let predicted = match (x, y) {
                    (0, 0) => 0,
                    (_, 0) => left(),
                    (0, _) => up(),
                    _ => match method {
                        1 => left(),
                        2 => up(),
                        _ => {
                            let gradient = i16::from(left()) + i16::from(up())
                                - i16::from(self.get(i - width - 1));
                            gradient.clamp(0, 255) as u8
                        }
                    },
                };
                let stored = self.get(i);
                self.set(i, stored.wrapping_add(predicted));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lossy WebPs with alpha, as libwebp writes them (every filter, and
    /// compressed and raw planes), decode here to exactly what the image
    /// crate's whole-file decode gives.
    #[test]
    fn two_steps_give_what_one_does() {
        let (w, h) = (97u32, 61u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [
                    (x * 2) as u8,
                    (y * 4) as u8,
                    128,
                    ((x * 3 + y * 5) % 256) as u8,
                ]
            })
            .collect();
        for (filter, compression) in [(0, 1), (1, 1), (2, 1), (3, 1), (1, 0), (3, 0)] {
            let mut config = webp::WebPConfig::new().unwrap();
            config.alpha_filtering = filter;
            config.alpha_compression = compression;
            config.quality = 80.0;
            let encoder = webp::Encoder::from_rgba(&rgba, w, h);
            let file = encoder.encode_advanced(&config).unwrap().to_vec();
            let still = Still::find(&file).expect("a still lossy WebP with alpha");
            let ours = decode(&still, &Limits::default(), &|| {}).unwrap();
            let theirs = image::load_from_memory(&file).unwrap().to_rgba8();
            let mut expected = vec![0; (w * h * 3) as usize];
            super::super::onto_white(theirs.as_raw(), 4, &mut expected).unwrap();
            assert_eq!(
                ours.rgb, expected,
                "filter {filter}, compression {compression}"
            );
        }
    }

    #[test]
    fn other_webps_are_left_to_image_webp() {
        let photo = image::DynamicImage::ImageRgb8(crate::samples::photo(40, 30));
        let lossless = crate::samples::encode(&photo, image::ImageFormat::WebP);
        assert!(Still::find(&lossless).is_none());
        let lossy = crate::Format::Webp
            .encode(crate::samples::photo(30, 30).as_raw(), 30, 80)
            .unwrap();
        assert!(Still::find(&lossy).is_none());
    }
}
