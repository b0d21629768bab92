//! The WebP files that image-webp would decode at a cost of more than
//! twice their RGBA pixels, decoded here in steps of its parts instead.
//! The RIFF container is only framing, so each part is given to image-webp
//! as a file of its own.
//!
//! - A still lossy WebP with alpha: image-webp decodes it into RGBA while it
//!   still holds the YUV frame and a whole ARGB image for the alpha plane,
//!   ten bytes a pixel. Here the colour and the alpha are decoded apart, and
//!   the alpha composited onto white as soon as it is known: at most seven.
//! - An animation: image-webp holds an RGBA canvas beside the frame it
//!   decodes, twelve bytes a pixel with ours. Only the first frame is ever
//!   shown, so it is decoded as the still it is, and placed on a canvas
//!   only if it does not cover it.

use std::io::Cursor;

use image::metadata::Orientation;

use super::{blend, buffer, check_dimensions, foresee, rgb_len, rgba_into_rgb, Decoded};
use crate::{Error, Limits};

/// What of a WebP file this module decodes itself.
pub enum Webp<'a> {
    LossyAlpha(Still<'a>),
    Animated(FirstFrame<'a>),
}

impl<'a> Webp<'a> {
    /// The parts of a still lossy WebP with alpha, or of an animation's
    /// first frame; anything else (still, and lossless or without alpha)
    /// is image-webp's to decode.
    pub fn find(input: &'a [u8]) -> Option<Webp<'a>> {
        let mut chunks = Chunks(input.get(12..)?);
        let (fourcc, vp8x) = chunks.next()?;
        if fourcc != *b"VP8X" || vp8x.len() < 10 {
            return None;
        }
        let flags = vp8x[0];
        let (width, height) = (le24(&vp8x[4..]) + 1, le24(&vp8x[7..]) + 1);
        let chunks: Vec<_> = chunks.collect();
        let exif = chunks.iter().find(|(c, _)| c == b"EXIF").map(|(_, d)| *d);
        if flags & 0x02 != 0 {
            let (_, anmf) = chunks.iter().find(|(c, _)| c == b"ANMF")?;
            return FirstFrame::parse(anmf, (width, height), exif).map(Webp::Animated);
        }
        if flags & 0x10 == 0 {
            return None;
        }
        let part = |name: &[u8; 4]| chunks.iter().find(|(c, _)| c == name).map(|(_, d)| *d);
        Some(Webp::LossyAlpha(Still {
            vp8: part(b"VP8 ")?,
            alph: part(b"ALPH")?,
            width,
            height,
            exif,
        }))
    }

    pub fn decode(&self, limits: &Limits, checkpoint: &dyn Fn()) -> Result<Decoded, Error> {
        match self {
            Webp::LossyAlpha(still) => decode_lossy_alpha(still, limits, checkpoint),
            Webp::Animated(first) => first.decode(limits, checkpoint),
        }
    }
}

fn le24(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0])
}

fn orientation(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// The parts of a still, lossy WebP with alpha.
pub struct Still<'a> {
    vp8: &'a [u8],
    /// The ALPH chunk: a header byte, then the alpha plane.
    alph: &'a [u8],
    width: u32,
    height: u32,
    exif: Option<&'a [u8]>,
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

/// A lossy frame without alpha: image-webp holds the YUV frame, a byte
/// and a half a pixel, beside the RGB it writes into.
fn decode_lossy(vp8: &[u8], width: u32, height: u32) -> Result<Vec<u8>, Error> {
    let colour = framed(b"VP8 ", &[vp8])?;
    let mut decoder = decoder(&colour)?;
    if decoder.dimensions() != (width, height) || decoder.has_alpha() {
        return Err(Error::Corrupt(
            "the VP8 frame does not match the header".into(),
        ));
    }
    let mut rgb = buffer(rgb_len(width, height)?)?;
    let pixels = rgb.len() / 3;
    foresee(pixels + pixels / 2)?;
    decoder.read_image(&mut rgb).map_err(webp_error)?;
    Ok(rgb)
}

fn decode_lossy_alpha(
    still: &Still<'_>,
    limits: &Limits,
    checkpoint: &dyn Fn(),
) -> Result<Decoded, Error> {
    let (width, height) = (still.width, still.height);
    check_dimensions(width, height, limits)?;
    let pixels = rgb_len(width, height)? / 3;
    let mut rgb = decode_lossy(still.vp8, width, height)?;
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
    Ok(Decoded::new(rgb, width, height, orientation(still.exif)))
}

/// The first frame of an animation: where it sits on the canvas, and its
/// image, lossy (with or without an alpha chunk) or lossless.
pub struct FirstFrame<'a> {
    canvas: (u32, u32),
    at: (u32, u32),
    width: u32,
    height: u32,
    vp8: Option<&'a [u8]>,
    alph: Option<&'a [u8]>,
    vp8l: Option<&'a [u8]>,
    exif: Option<&'a [u8]>,
}

impl<'a> FirstFrame<'a> {
    /// An ANMF chunk: offsets (in units of two pixels), size, duration and
    /// flags, then the frame's own chunks.
    fn parse(anmf: &'a [u8], canvas: (u32, u32), exif: Option<&'a [u8]>) -> Option<Self> {
        let header = anmf.get(..16)?;
        let (mut vp8, mut alph, mut vp8l) = (None, None, None);
        for (fourcc, data) in Chunks(&anmf[16..]) {
            match &fourcc {
                b"VP8 " => vp8 = Some(data),
                b"ALPH" => alph = Some(data),
                b"VP8L" => vp8l = Some(data),
                _ => {}
            }
        }
        Some(FirstFrame {
            canvas,
            at: (2 * le24(header), 2 * le24(&header[3..])),
            width: le24(&header[6..]) + 1,
            height: le24(&header[9..]) + 1,
            vp8,
            alph,
            vp8l,
            exif,
        })
    }

    fn decode(&self, limits: &Limits, checkpoint: &dyn Fn()) -> Result<Decoded, Error> {
        let (canvas_width, canvas_height) = self.canvas;
        check_dimensions(canvas_width, canvas_height, limits)?;
        check_dimensions(self.width, self.height, limits)?;
        if u64::from(self.at.0) + u64::from(self.width) > u64::from(canvas_width)
            || u64::from(self.at.1) + u64::from(self.height) > u64::from(canvas_height)
        {
            return Err(Error::Corrupt(
                "the first frame does not fit its canvas".into(),
            ));
        }
        let (width, height) = (self.width, self.height);
        let frame = match (self.vp8, self.alph, self.vp8l) {
            (Some(vp8), Some(alph), None) => {
                let still = Still {
                    vp8,
                    alph,
                    width,
                    height,
                    exif: None,
                };
                decode_lossy_alpha(&still, limits, checkpoint)?.rgb
            }
            (Some(vp8), None, None) => decode_lossy(vp8, width, height)?,
            (None, None, Some(vp8l)) => decode_lossless(vp8l, width, height)?,
            _ => {
                return Err(Error::Corrupt(
                    "the first frame has no image, or two".into(),
                ))
            }
        };
        checkpoint();
        let rgb = if (width, height) == self.canvas {
            frame
        } else {
            // What the frame leaves uncovered is transparent: white.
            let mut canvas = buffer(rgb_len(canvas_width, canvas_height)?)?;
            canvas.fill(255);
            let (stride, row) = (canvas_width as usize * 3, width as usize * 3);
            for (y, line) in frame.chunks_exact(row).enumerate() {
                let start = (self.at.1 as usize + y) * stride + self.at.0 as usize * 3;
                canvas[start..start + row].copy_from_slice(line);
            }
            canvas
        };
        Ok(Decoded::new(
            rgb,
            canvas_width,
            canvas_height,
            orientation(self.exif),
        ))
    }
}

/// A lossless frame: image-webp holds its ARGB words beside the RGBA (or
/// RGB) it writes into, which is then composited onto white in place.
fn decode_lossless(vp8l: &[u8], width: u32, height: u32) -> Result<Vec<u8>, Error> {
    let image = framed(b"VP8L", &[vp8l])?;
    let mut decoder = decoder(&image)?;
    if decoder.dimensions() != (width, height) {
        return Err(Error::Corrupt(
            "the lossless frame does not match its header".into(),
        ));
    }
    let len = decoder
        .output_buffer_size()
        .ok_or(Error::OutOfMemory { bytes: usize::MAX })?;
    let mut pixels = buffer(len)?;
    foresee(rgb_len(width, height)? / 3 * 4)?;
    decoder.read_image(&mut pixels).map_err(webp_error)?;
    Ok(if decoder.has_alpha() {
        rgba_into_rgb(pixels)
    } else {
        pixels
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
            let Some(Webp::LossyAlpha(still)) = Webp::find(&file) else {
                panic!("a still lossy WebP with alpha");
            };
            let ours = decode_lossy_alpha(&still, &Limits::default(), &|| {}).unwrap();
            let theirs = image::load_from_memory(&file).unwrap().to_rgba8();
            let mut expected = vec![0; (w * h * 3) as usize];
            super::super::onto_white(theirs.as_raw(), 4, &mut expected).unwrap();
            assert_eq!(
                ours.rgb, expected,
                "filter {filter}, compression {compression}"
            );
        }
    }

    /// An animation's first frame decodes to what the same image as a
    /// still does, and a frame that covers only part of its canvas leaves
    /// the rest white.
    #[test]
    fn an_animation_is_its_first_frame() {
        let frame = crate::samples::disc_with_alpha(40, [200, 30, 60]);
        let as_still = crate::samples::encode(
            &image::DynamicImage::ImageRgba8(frame.clone()),
            image::ImageFormat::WebP,
        );
        let mut still = vec![0; 40 * 40 * 3];
        super::super::onto_white(
            image::load_from_memory(&as_still)
                .unwrap()
                .to_rgba8()
                .as_raw(),
            4,
            &mut still,
        )
        .unwrap();
        let decode = |file: &[u8]| {
            Webp::find(file)
                .expect("an animation")
                .decode(&Limits::default(), &|| {})
                .unwrap()
        };
        assert_eq!(decode(&crate::samples::animated_webp(&frame)).rgb, still);

        let placed = decode(&crate::samples::animated_webp_on(
            (100, 60),
            (50, 10),
            &frame,
        ));
        assert_eq!((placed.width, placed.height), (100, 60));
        for y in 0..60 {
            for x in 0..100 {
                let at = (y * 100 + x) * 3;
                let want = if (50..90).contains(&x) && (10..50).contains(&y) {
                    &still[((y - 10) * 40 + x - 50) * 3..][..3]
                } else {
                    &[255, 255, 255][..]
                };
                assert_eq!(&placed.rgb[at..at + 3], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_first_frame_outside_its_canvas_is_corrupt() {
        let frame = crate::samples::disc_with_alpha(40, [0, 0, 0]);
        let file = crate::samples::animated_webp_on((60, 60), (30, 0), &frame);
        let decoded = Webp::find(&file)
            .expect("an animation")
            .decode(&Limits::default(), &|| {});
        assert!(
            matches!(decoded, Err(Error::Corrupt(_))),
            "{:?}",
            decoded.err()
        );
    }

    #[test]
    fn other_webps_are_left_to_image_webp() {
        let photo = image::DynamicImage::ImageRgb8(crate::samples::photo(40, 30));
        let lossless = crate::samples::encode(&photo, image::ImageFormat::WebP);
        assert!(Webp::find(&lossless).is_none());
        let lossy = crate::encode::encode(
            crate::Format::Webp,
            crate::samples::photo(30, 30).as_raw(),
            30,
            80,
        )
        .unwrap();
        assert!(Webp::find(&lossy).is_none());
    }
}
