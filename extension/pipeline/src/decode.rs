//! From untrusted bytes to upright-able 8-bit RGB pixels: within limits,
//! whole or not at all, and never more memory than the caller can be
//! refused cleanly.
//!
//! Every decoder writes into a buffer this module allocates fallibly, in
//! 8 bits a sample whatever the file's depth, with any alpha composited
//! onto white as the pixels arrive. So an upload costs at most its 8-bit
//! RGBA size twice over, and running out of memory is [`Error::OutOfMemory`]
//! (SQLSTATE 53200), not an abort that takes every backend with it.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{ColorType, ImageDecoder, ImageFormat, ImageReader};

pub use crate::complete::Scrutiny;
use avatar_contract::Upload;

use crate::{complete, Error, Limits};

mod gif;
mod webp;

/// Decoded pixels as stored in the file: 8-bit RGB with any alpha already
/// composited onto white, plus the orientation that makes them upright.
pub struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    /// The stored image's own width and height: more than `width` and
    /// `height` when a JPEG was shrunk on load.
    pub full: (u32, u32),
}

impl Decoded {
    fn new(rgb: Vec<u8>, width: u32, height: u32, orientation: Orientation) -> Decoded {
        Decoded {
            rgb,
            width,
            height,
            orientation,
            full: (width, height),
        }
    }
}

/// The contract's name for a format the decoders read.
fn accepted(format: ImageFormat) -> Option<Upload> {
    Some(match format {
        ImageFormat::Jpeg => Upload::Jpeg,
        ImageFormat::Png => Upload::Png,
        ImageFormat::WebP => Upload::Webp,
        ImageFormat::Gif => Upload::Gif,
        ImageFormat::Bmp => Upload::Bmp,
        _ => return None,
    })
}

/// What a decode is for, so that a JPEG can be shrunk on load as far as
/// that allows: an output of `side` pixels cut from a square of `square`
/// stored pixels (the centre square, the shorter side, when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shrink {
    pub side: u32,
    pub square: Option<u32>,
}

impl Shrink {
    /// For `side` pixels of the centre square.
    pub fn to(side: u32) -> Shrink {
        Shrink { side, square: None }
    }
}

/// Decodes `input`, an upload or a file pg_avatar stored itself, as
/// `scrutiny` says. With `shrink`, a JPEG whose square is at least 8x its
/// side is decoded at a reduced scale (see [`shrink_factor`]).
pub fn decode(
    input: &[u8],
    limits: &Limits,
    checkpoint: &dyn Fn(),
    shrink: Option<Shrink>,
    scrutiny: Scrutiny,
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
    let format = image::guess_format(input).map_err(|_| Error::UnknownFormat)?;
    let Some(upload) = accepted(format) else {
        return Err(Error::UnsupportedFormat(
            format!("{format:?}").to_uppercase(),
        ));
    };
    // Before any decoder runs: a cut file is refused as a whole, rather
    // than decoded into an avatar whose lower part is grey.
    let whole = complete::check(format, input, limits.max_input_pixels, scrutiny, checkpoint)?;
    match (upload, whole) {
        (_, complete::Whole::Jpeg(walked)) => {
            decode_jpeg(input, &walked, limits, checkpoint, shrink)
        }
        (Upload::Png, _) => decode_png(input, limits, checkpoint),
        (Upload::Gif, _) => gif::decode(input, limits, checkpoint),
        (Upload::Webp, _) => match webp::Webp::find(input) {
            Some(parts) => parts.decode(limits, checkpoint),
            None => decode_8bit(format, input, limits, checkpoint),
        },
        (Upload::Jpeg | Upload::Bmp, _) => decode_8bit(format, input, limits, checkpoint),
    }
}

/// Refuses dimensions before a buffer sized by them (untrusted) exists.
pub(crate) fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), Error> {
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
    Ok(())
}

/// A zeroed buffer of `len` bytes, or [`Error::OutOfMemory`] if the system
/// will not give it: the one way this crate allocates anything large.
pub fn buffer(len: usize) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory { bytes: len })?;
    buf.resize(len, 0);
    Ok(buf)
}

/// Asks for what a decoder is about to allocate on its own (infallibly),
/// and gives it straight back: a shortage the pipeline can foresee is then
/// an error here rather than an abort inside the decoder.
pub(crate) fn foresee(len: usize) -> Result<(), Error> {
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory { bytes: len })
}

pub(crate) fn rgb_len(width: u32, height: u32) -> Result<usize, Error> {
    usize::try_from(u64::from(width) * u64::from(height) * 3)
        .map_err(|_| Error::OutOfMemory { bytes: usize::MAX })
}

/// PNG by rows: 16-bit samples are cut to 8 and palettes expanded as each
/// row is unfiltered, and each row is composited into the RGB buffer, so no
/// buffer of the file's own depth and channels is ever whole.
fn decode_png(input: &[u8], limits: &Limits, checkpoint: &dyn Fn()) -> Result<Decoded, Error> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(input),
        png::Limits {
            // Rows, palettes and the zlib window: never the image.
            bytes: 16 << 20,
        },
    );
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    // Text and colour profiles are never used; skipping them also skips
    // their decompression, which is a bomb of its own.
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    check_dimensions(width, height, limits)?;
    // A damaged EXIF block must not cost the user their upload: show it as stored.
    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let channels = reader.output_color_type().0.samples();
    checkpoint();

    let stride = width as usize * 3;
    let mut rgb = buffer(rgb_len(width, height)?)?;
    let mut converted = vec![0u8; stride];
    let mut rows = 0usize;
    while let Some(row) = reader.next_interlaced_row().map_err(png_error)? {
        let pixels = row.data().len() / channels;
        let out = &mut converted[..pixels * 3];
        onto_white(row.data(), channels, out)?;
        match row.interlace() {
            png::InterlaceInfo::Adam7(pass) => {
                png::expand_interlaced_row(&mut rgb, stride, out, pass, 24)
            }
            png::InterlaceInfo::Null(_) => {
                let start = rows * stride;
                rgb.get_mut(start..start + stride)
                    .ok_or_else(|| Error::Corrupt("more rows than the header says".into()))?
                    .copy_from_slice(out);
            }
        }
        rows += 1;
        if rows.is_multiple_of(256) {
            checkpoint();
        }
    }
    // To IEND, with every CRC: a file cut after its last row is still cut.
    reader.finish().map_err(png_error)?;
    checkpoint();
    Ok(Decoded::new(rgb, width, height, orientation))
}

fn png_error(e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::IoError(io) => Error::Corrupt(format!("truncated ({io})")),
        png::DecodingError::LimitsExceeded => Error::Corrupt("PNG decoder limit reached".into()),
        other => Error::Corrupt(other.to_string()),
    }
}

/// JPEG, with zune-jpeg writing RGB straight into the buffer (grey, CMYK
/// and YCCK converted on the way), or shrunk on load.
fn decode_jpeg(
    upload: &[u8],
    walked: &complete::Walked,
    limits: &Limits,
    checkpoint: &dyn Fn(),
    shrink: Option<Shrink>,
) -> Result<Decoded, Error> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    // The decoders read only what the walk read.
    let canonical = walked.canonical(upload).map_err(|_| Error::OutOfMemory {
        bytes: upload.len(),
    })?;
    let input = canonical.as_slice();
    let frame = walked.frame;
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(input), options);
    decoder.decode_headers().map_err(jpeg_error)?;
    let (width, height) = decoder
        .dimensions()
        .map(|(w, h)| (w as u32, h as u32))
        .ok_or_else(|| Error::Corrupt("JPEG without a frame header".into()))?;
    check_dimensions(width, height, limits)?;
    let orientation = walked
        .exif
        .clone()
        .and_then(|at| Orientation::from_exif_chunk(&upload[at]))
        .unwrap_or(Orientation::NoTransforms);
    // The walk and the decoder must have read one frame.
    if (u32::from(frame.width), u32::from(frame.height)) != (width, height) {
        return Err(Error::Corrupt(
            "the frame header the decoder read is not the file's".into(),
        ));
    }
    // A progressive decoder keeps every coefficient until the last scan
    // (and so does zune-jpeg's of a sequential file split into scans); a
    // baseline one only a row of blocks.
    let coefficients = if frame.holds_coefficients() {
        usize::try_from(frame.coefficient_bytes(width, height))
            .map_err(|_| Error::OutOfMemory { bytes: usize::MAX })?
    } else {
        0
    };
    let pixels = rgb_len(width, height)? / 3;
    checkpoint();

    // A progressive decoder holds every coefficient until the last scan:
    // with every component at full resolution (4:4:4, or CMYK), 6 or 8
    // bytes a pixel before any output, which no reduced decode saves
    // (jpeg-decoder's half-size decode of 4:4:4 peaks at 7.8). Over a
    // quarter of the pixel limit, where that memory matters, such a file
    // is refused rather than decoded past twice its RGBA pixels; below it,
    // it costs at most 9 bytes a pixel of a quarter of the limit, a
    // quarter of what the largest accepted input may.
    let peak = coefficients as u64 + 3 * pixels as u64;
    if peak > 8 * pixels as u64 && pixels as u64 > limits.max_input_pixels / 4 {
        let kind = if frame.progressive {
            "progressive"
        } else {
            "sequential, in scans of some components each,"
        };
        return Err(Error::TooCostly {
            what: format!(
                "a {kind} JPEG of {} components, holding every coefficient",
                frame.components
            ),
            bytes: peak,
        });
    }
    // The square the output is cut from, which no crop makes larger than
    // the shorter side.
    let square = |shrink: Shrink| shrink.square.unwrap_or(u32::MAX).min(width.min(height));
    let mut factor = shrink.map_or(1, |s| shrink_factor(square(s), s.side));
    // When the result is to be shrunk anyway, a half-size decode of a
    // progressive file's coefficients halves the output at no loss the
    // master can show.
    if frame.progressive && factor == 1 && shrink.is_some_and(|s| square(s) / 2 >= s.side) {
        factor = 2;
    }
    // zune-jpeg misreads a sequential file in scans of some components
    // once one is subsampled (its pixels come out in stripes, from
    // jpeg-encoder's own 4:2:0 with optimised tables); jpeg-decoder reads
    // it right, at any scale, except in CMYK.
    let misread = frame.split && frame.subsampled();
    if factor > 1 || misread {
        match decode_jpeg_scaled(
            input,
            width,
            height,
            factor,
            orientation,
            limits,
            coefficients,
        )? {
            Some(decoded) => {
                checkpoint();
                return Ok(Decoded {
                    full: (width, height),
                    ..decoded
                });
            }
            None if misread => {
                return Err(Error::UnsupportedFeature(
                    "a subsampled CMYK JPEG in scans of some components each".into(),
                ))
            }
            None => {}
        }
    }
    let mut rgb = buffer(rgb_len(width, height)?)?;
    foresee(coefficients)?;
    decoder.decode_into(&mut rgb).map_err(jpeg_error)?;
    checkpoint();
    Ok(Decoded::new(rgb, width, height, orientation))
}

fn jpeg_error(e: zune_jpeg::errors::DecodeErrors) -> Error {
    use zune_jpeg::errors::DecodeErrors as E;
    match e {
        E::Unsupported(what) => Error::UnsupportedFeature(format!("{what:?}")),
        other => Error::Corrupt(other.to_string()),
    }
}

/// Still lossless WebP, lossy WebP without alpha, and BMP, which are 8 bits
/// a sample already: through the image crate's decoders, into a buffer of
/// ours.
fn decode_8bit(
    format: ImageFormat,
    input: &[u8],
    limits: &Limits,
    checkpoint: &dyn Fn(),
) -> Result<Decoded, Error> {
    let mut reader = ImageReader::with_format(Cursor::new(input), format);
    // A second guard behind the header check below: decoders that honour it
    // refuse any allocation past what the limits allow.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(allocation_budget(limits));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let color = decoder.color_type();
    let channels = match color {
        ColorType::L8 => 1,
        ColorType::La8 => 2,
        ColorType::Rgb8 => 3,
        ColorType::Rgba8 => 4,
        other => {
            return Err(Error::UnsupportedFeature(format!(
                "{other:?} pixels in a {format:?} file"
            )))
        }
    };
    let len = usize::try_from(decoder.total_bytes())
        .map_err(|_| Error::OutOfMemory { bytes: usize::MAX })?;
    checkpoint();
    // What these decoders hold besides our buffer, at most: ARGB words for
    // lossless WebP.
    let held = u64::from(width) * u64::from(height) * 4;
    let mut pixels = buffer(len)?;
    foresee(usize::try_from(held).unwrap_or(usize::MAX))?;
    decoder.read_image(&mut pixels)?;
    checkpoint();
    let rgb = match channels {
        3 => pixels,
        4 => rgba_into_rgb(pixels),
        _ => {
            let mut rgb = buffer(rgb_len(width, height)?)?;
            onto_white(&pixels, channels, &mut rgb)?;
            rgb
        }
    };
    Ok(Decoded::new(rgb, width, height, orientation))
}

/// The most any decoder may allocate for one input.
pub fn allocation_budget(limits: &Limits) -> u64 {
    limits
        .max_input_pixels
        .saturating_mul(8)
        .saturating_add(limits.max_input_bytes as u64)
        .saturating_add(16 << 20)
}

/// `channels`-sample 8-bit pixels (grey, grey and alpha, RGB, RGBA) as
/// RGB, transparent ones shown over white as a browser would.
pub(crate) fn onto_white(pixels: &[u8], channels: usize, rgb: &mut [u8]) -> Result<(), Error> {
    if pixels.len() / channels * 3 != rgb.len() {
        return Err(Error::Internal("row lengths disagree".into()));
    }
    let out = rgb.chunks_exact_mut(3);
    match channels {
        1 => out
            .zip(pixels)
            .for_each(|(o, &l)| o.copy_from_slice(&[l, l, l])),
        2 => out
            .zip(pixels.chunks_exact(2))
            .for_each(|(o, p)| o.copy_from_slice(&blend([p[0]; 3], p[1]))),
        3 => rgb.copy_from_slice(pixels),
        4 => out
            .zip(pixels.chunks_exact(4))
            .for_each(|(o, p)| o.copy_from_slice(&blend([p[0], p[1], p[2]], p[3]))),
        _ => return Err(Error::Internal(format!("{channels} channels"))),
    }
    Ok(())
}

/// RGBA pixels composited onto white, in the same buffer: pixel i is read
/// whole before its three bytes are written at 3i, which never passes the
/// unread 4(i+1).
pub(crate) fn rgba_into_rgb(mut pixels: Vec<u8>) -> Vec<u8> {
    let count = pixels.len() / 4;
    for i in 0..count {
        let [r, g, b, a] = [
            pixels[4 * i],
            pixels[4 * i + 1],
            pixels[4 * i + 2],
            pixels[4 * i + 3],
        ];
        pixels[3 * i..3 * i + 3].copy_from_slice(&blend([r, g, b], a));
    }
    pixels.truncate(count * 3);
    pixels
}

pub(crate) fn blend(rgb: [u8; 3], alpha: u8) -> [u8; 3] {
    let a = u32::from(alpha);
    rgb.map(|c| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8)
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
/// or a JPEG variant this decoder does not support). `coefficients` is what
/// it will hold of a progressive file's until the last scan.
fn decode_jpeg_scaled(
    input: &[u8],
    width: u32,
    height: u32,
    factor: u32,
    orientation: Orientation,
    limits: &Limits,
    coefficients: usize,
) -> Result<Option<Decoded>, Error> {
    use jpeg_decoder::{Decoder, Error as JpegError, PixelFormat};
    let failed = |e: JpegError| match e {
        JpegError::Unsupported(_) => Ok(None),
        // The decoder reads from memory, so its only I/O is starting a
        // worker thread for each component of a large image, which fails
        // when the backend is short of memory: not the file's fault.
        JpegError::Io(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            Err(Error::OutOfMemory {
                bytes: coefficients,
            })
        }
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
    // The coefficients, and its planes and output at the reduced size, all
    // of which it allocates infallibly and holds at once.
    foresee(coefficients + rgb_len(u32::from(w), u32::from(h))? * 2)?;
    let pixels = match jpeg.decode() {
        Ok(pixels) => pixels,
        Err(e) => return failed(e),
    };
    let (width, height) = (u32::from(w), u32::from(h));
    let rgb = if grey {
        let mut rgb = buffer(rgb_len(width, height)?)?;
        onto_white(&pixels, 1, &mut rgb)?;
        rgb
    } else {
        pixels
    };
    if rgb.len() != rgb_len(width, height)? {
        return Err(Error::Corrupt(
            "JPEG decoded to the wrong number of pixels".into(),
        ));
    }
    Ok(Some(Decoded::new(rgb, width, height, orientation)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let rgba = [
            0, 0, 0, 0, // fully transparent black: white
            0, 0, 0, 255, // opaque black stays black
            255, 0, 0, 128, // half red: pink
            10, 20, 30, 255,
        ];
        let mut rgb = [0; 12];
        onto_white(&rgba, 4, &mut rgb).unwrap();
        assert_eq!(rgb, [255, 255, 255, 0, 0, 0, 255, 127, 127, 10, 20, 30]);
        let mut rgb = [0; 6];
        onto_white(&[0, 0, 200, 255], 2, &mut rgb).unwrap();
        assert_eq!(rgb, [255, 255, 255, 200, 200, 200]);
    }

    #[test]
    fn sixteen_bit_grey_alpha_is_flattened() {
        let img =
            image::ImageBuffer::<image::LumaA<u16>, _>::from_pixel(2, 2, image::LumaA([0, 0]));
        let png = crate::samples::encode(&image::DynamicImage::ImageLumaA16(img), ImageFormat::Png);
        let decoded = decode(&png, &Limits::default(), &|| {}, None, Scrutiny::Upload).unwrap();
        assert_eq!(decoded.rgb, vec![255; 12]);
    }

    #[test]
    fn a_buffer_the_system_cannot_give_is_an_error() {
        assert_eq!(
            buffer(usize::MAX / 2).unwrap_err(),
            Error::OutOfMemory {
                bytes: usize::MAX / 2
            }
        );
        assert!(foresee(usize::MAX / 2).is_err());
    }
}
