//! Images made in code, for tests, benchmarks and the demo: nothing is
//! downloaded and every byte is reproducible.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A smooth, colourful scene with sharp edges: gradients and a few discs.
pub fn scene(width: u32, height: u32) -> RgbImage {
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let unit = w.min(h);
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        // Round in pixels whatever the aspect ratio; radius in units of the shorter side.
        let disc = |cx: f32, cy: f32, r: f32| {
            ((x as f32 - cx * w).powi(2) + (y as f32 - cy * h).powi(2)).sqrt() < r * unit
        };
        if disc(0.4, 0.38, 0.04) || disc(0.6, 0.38, 0.04) {
            Rgb([40, 40, 60])
        } else if disc(0.5, 0.45, 0.25) {
            Rgb([240, 200, 160])
        } else {
            Rgb([
                (255.0 * fx) as u8,
                (255.0 * fy) as u8,
                (128.0 + 100.0 * (fx * 9.0).sin()) as u8,
            ])
        }
    })
}

/// [`scene`] with fine deterministic grain, so it compresses and decodes
/// like a photograph rather than a cartoon.
pub fn photo(width: u32, height: u32) -> RgbImage {
    let mut image = scene(width, height);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for pixel in image.pixels_mut() {
        for channel in pixel.0.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *channel = channel
                .saturating_add((state % 24) as u8)
                .saturating_sub(12);
        }
    }
    image
}

/// A transparent canvas with an opaque disc: for alpha-onto-white.
pub fn disc_with_alpha(side: u32, colour: [u8; 3]) -> RgbaImage {
    let c = side as f32 / 2.0;
    RgbaImage::from_fn(side, side, |x, y| {
        let inside = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt() < c / 2.0;
        if inside {
            Rgba([colour[0], colour[1], colour[2], 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode sample");
    out.into_inner()
}

/// A JPEG whose EXIF block carries `orientation` (1..=8), with `stored`
/// as the stored pixels.
pub fn jpeg_with_exif_orientation(stored: &RgbImage, orientation: u16) -> Vec<u8> {
    // A little-endian TIFF header and one IFD holding tag 0x0112 (SHORT).
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    encoder.add_exif_metadata(&tiff).expect("exif fits");
    encoder
        .encode(
            stored.as_raw(),
            stored.width() as u16,
            stored.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encode sample");
    out
}

/// The stored pixels that `orientation` turns into `upright`.
pub fn stored_for(upright: &RgbImage, orientation: Orientation) -> RgbImage {
    let inverse = match orientation {
        Orientation::Rotate90 => Orientation::Rotate270,
        Orientation::Rotate270 => Orientation::Rotate90,
        other => other,
    };
    let mut image = DynamicImage::ImageRgb8(upright.clone());
    image.apply_orientation(inverse);
    image.into_rgb8()
}

/// A small valid PNG whose header claims `width` x `height`: a
/// decompression bomb as far as any header check can tell.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(
        &DynamicImage::ImageRgb8(RgbImage::new(8, 8)),
        ImageFormat::Png,
    );
    // Signature (8) + IHDR length (4) + "IHDR" (4), then width and height.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A lossy WebP with an alpha channel, as libwebp writes it.
pub fn lossy_webp_with_alpha(image: &RgbaImage, quality: f32) -> Vec<u8> {
    webp::Encoder::from_rgba(image.as_raw(), image.width(), image.height())
        .encode(quality)
        .to_vec()
}

/// Smooth RGBA pixels that compress to little in any format.
pub fn smooth_rgba(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        Rgba([(x / 64) as u8, (y / 64) as u8, ((x + y) / 128) as u8, 255])
    })
}

/// A GIF whose logical screen is `screen` and whose first frame, of
/// `frame` pixels, sits at `at`: it may be larger than the screen, or
/// leave part of it uncovered.
pub fn gif_with_screen(screen: (u16, u16), frame: (u16, u16), at: (u16, u16)) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, screen.0, screen.1, &[0, 0, 0, 255, 255, 255])
                .expect("a GIF header");
        let pixels: Vec<u8> = (0..usize::from(frame.0) * usize::from(frame.1))
            .map(|i| ((i / 4096) % 2) as u8)
            .collect();
        let mut frame = gif::Frame::from_indexed_pixels(frame.0, frame.1, pixels, None);
        (frame.left, frame.top) = at;
        encoder.write_frame(&frame).expect("a frame");
    }
    out
}

/// An animated WebP of one lossless frame covering the canvas.
pub fn animated_webp(image: &RgbaImage) -> Vec<u8> {
    animated_webp_on((image.width(), image.height()), (0, 0), image)
}

/// An animated WebP whose one lossless frame, the still image's VP8L
/// chunk, sits at `at` (even offsets) on a canvas of `canvas`.
pub fn animated_webp_on(canvas: (u32, u32), at: (u32, u32), image: &RgbaImage) -> Vec<u8> {
    let still = encode(&DynamicImage::ImageRgba8(image.clone()), ImageFormat::WebP);
    let chunk = still
        .windows(4)
        .position(|w| w == b"VP8L")
        .expect("a lossless chunk");
    let len =
        u32::from_le_bytes(still[chunk + 4..chunk + 8].try_into().expect("a length")) as usize;
    let vp8l = &still[chunk..chunk + 8 + len + (len & 1)];
    let le24 = |v: u32| [v as u8, (v >> 8) as u8, (v >> 16) as u8];
    let mut frame = Vec::new();
    frame.extend(le24(at.0 / 2));
    frame.extend(le24(at.1 / 2));
    frame.extend(le24(image.width() - 1));
    frame.extend(le24(image.height() - 1));
    frame.extend(le24(100)); // duration, ms
    frame.push(0);
    frame.extend_from_slice(vp8l);
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend(10u32.to_le_bytes());
    body.extend([0x10 | 0x02, 0, 0, 0]); // alpha, animation
    body.extend(le24(canvas.0 - 1));
    body.extend(le24(canvas.1 - 1));
    body.extend_from_slice(b"ANIM");
    body.extend(6u32.to_le_bytes());
    body.extend([255, 255, 255, 255, 0, 0]);
    body.extend_from_slice(b"ANMF");
    body.extend((frame.len() as u32).to_le_bytes());
    body.extend(&frame);
    if frame.len() % 2 == 1 {
        body.push(0);
    }
    let mut file = b"RIFF".to_vec();
    file.extend((body.len() as u32).to_le_bytes());
    file.extend(body);
    file
}

/// A progressive JPEG of `image` whose last scan is repeated `extra` more
/// times before the end: as many scans as an attacker likes, each making
/// the decoder walk every block again.
pub fn progressive_jpeg_with_scans(image: &RgbImage, extra: u32) -> Vec<u8> {
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 80);
    encoder.set_progressive(true);
    encoder
        .encode(
            image.as_raw(),
            image.width() as u16,
            image.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("a progressive JPEG");
    let last_scan = jpeg
        .windows(2)
        .rposition(|m| m == [0xFF, 0xDA])
        .expect("a scan");
    let end = jpeg.len() - 2;
    let scan = jpeg[last_scan..end].to_vec();
    let mut out = jpeg[..end].to_vec();
    for _ in 0..extra {
        out.extend_from_slice(&scan);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A progressive JPEG of smooth content with every component at full
/// resolution (4:4:4), as high-quality exports write them, in RGB or CMYK:
/// the most coefficients per pixel a progressive decoder must keep.
pub fn progressive_full_chroma_jpeg(width: u16, height: u16, cmyk: bool) -> Vec<u8> {
    let channels = if cmyk { 4 } else { 3 };
    let pixels: Vec<u8> = (0..u32::from(height))
        .flat_map(|y| {
            (0..u32::from(width)).flat_map(move |x| {
                [(x / 64) as u8, (y / 64) as u8, ((x + y) / 128) as u8, 40]
                    .into_iter()
                    .take(channels)
            })
        })
        .collect();
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 80);
    encoder.set_progressive(true);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
    let colour = if cmyk {
        jpeg_encoder::ColorType::Cmyk
    } else {
        jpeg_encoder::ColorType::Rgb
    };
    encoder
        .encode(&pixels, width, height, colour)
        .expect("a progressive JPEG");
    jpeg
}

/// A JPEG marker segment.
fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend(((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A DC table 0 and an AC table 0 of one code each, 0: a difference of
/// size 0, and `ac`.
fn one_code_tables(ac: u8) -> Vec<u8> {
    let mut tables = vec![0x00, 1];
    tables.extend([0u8; 15]);
    tables.push(0);
    tables.extend([0x10, 1]);
    tables.extend([0u8; 15]);
    tables.push(ac);
    tables
}

/// A JPEG up to its frame header: the start marker, Adobe's marker for
/// four components (CMYK), a quantisation table of ones, and the frame
/// header `sof` of components with ids from 1 and the given sampling.
fn frame_start(sof: u8, width: u16, height: u16, sampling: &[(u8, u8)]) -> Vec<u8> {
    let mut file = vec![0xFF, 0xD8];
    if sampling.len() == 4 {
        file.extend(segment(0xEE, b"Adobe\0\x64\0\0\0\0\0"));
    }
    let mut quantisation = vec![0u8];
    quantisation.extend([1u8; 64]);
    file.extend(segment(0xDB, &quantisation));
    let mut frame = vec![8];
    frame.extend(height.to_be_bytes());
    frame.extend(width.to_be_bytes());
    frame.push(sampling.len() as u8);
    for (id, &(h, v)) in (1u8..).zip(sampling) {
        frame.extend([id, h << 4 | v, 0]);
    }
    file.extend(segment(sof, &frame));
    file
}

/// Bits as entropy-coded data: stuffed, padded with ones.
pub(crate) fn entropy(bits: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in bits.chunks(8) {
        let byte = (0..8).fold(0u8, |b, i| {
            b << 1 | u8::from(*chunk.get(i).unwrap_or(&true))
        });
        out.push(byte);
        if byte == 0xFF {
            out.push(0);
        }
    }
    out
}

/// A progressive grey JPEG of `side` x `side` whose scans are as cheap to
/// write and as dear to read as JPEG allows: a DC scan, an AC scan of
/// nothing but end-of-band runs, then `refinements` AC refinement scans of
/// the same runs, each a pass over every block for a few bytes.
pub fn refinement_bomb(side: u16, refinements: u32) -> Vec<u8> {
    let blocks = u32::from(side).div_ceil(8).pow(2);
    let mut file = frame_start(0xC2, side, side, &[(1, 1)]);
    // A DC table whose one code, 0, means a difference of size 0; an AC
    // table whose one code, 0, means a run of 2^14 blocks and 14 more bits.
    file.extend(segment(0xC4, &one_code_tables(0xE0)));
    file.extend(segment(0xDA, &[1, 1, 0x00, 0, 0, 0]));
    file.extend(entropy(&vec![false; blocks as usize]));
    let mut runs = Vec::new();
    let mut left = blocks;
    while left > 0 {
        let extra = left.saturating_sub(1 << 14).min((1 << 14) - 1);
        runs.push(false);
        runs.extend((0..14).rev().map(|bit| extra >> bit & 1 == 1));
        left = left.saturating_sub((1 << 14) + extra);
    }
    let runs = entropy(&runs);
    file.extend(segment(0xDA, &[1, 1, 0x00, 1, 63, 0x00]));
    file.extend_from_slice(&runs);
    for _ in 0..refinements {
        file.extend(segment(0xDA, &[1, 1, 0x00, 1, 63, 0x10]));
        file.extend_from_slice(&runs);
    }
    file.extend([0xFF, 0xD9]);
    file
}

/// `jpeg` with a copy of its frame header, marked arithmetic-coded, just
/// before its first scan, behind an APP0 of six bytes: zune-jpeg reads one
/// byte too many of such an APP0 and so skips the copy, where a reader that
/// honours the length takes it for the file's frame, which it is not.
pub fn behind_a_hidden_frame(jpeg: &[u8]) -> Vec<u8> {
    let at = |marker: u8| jpeg.windows(2).position(|w| w == [0xFF, marker]);
    let frame = at(0xC0)
        .or_else(|| at(0xC1))
        .or_else(|| at(0xC2))
        .expect("a frame header");
    let length = usize::from(u16::from_be_bytes([jpeg[frame + 2], jpeg[frame + 3]]));
    let scans = at(0xDA).expect("a scan");
    let mut out = jpeg[..scans].to_vec();
    out.extend_from_slice(b"\xFF\xE0\x00\x06JFIF\xFF\xC9");
    out.extend_from_slice(&jpeg[frame + 2..frame + 2 + length]);
    out.extend_from_slice(&jpeg[scans..]);
    out
}

/// A sequential JPEG of grey, all-zero blocks, built by hand for layouts
/// no encoder writes: components of the given sampling factors (ids from
/// 1; four are CMYK, with Adobe's marker saying so), coded in the given
/// scans, each a list of component indices.
pub fn blank_jpeg(width: u16, height: u16, sampling: &[(u8, u8)], scans: &[&[usize]]) -> Vec<u8> {
    let mut file = frame_start(0xC0, width, height, sampling);
    // The AC code means an end-of-block.
    file.extend(segment(0xC4, &one_code_tables(0x00)));
    let max_h = sampling.iter().map(|f| f.0).max().unwrap_or(1);
    let max_v = sampling.iter().map(|f| f.1).max().unwrap_or(1);
    let along = |extent: u16, factor: u8, max: u8| {
        (u64::from(extent) * u64::from(factor))
            .div_ceil(u64::from(max))
            .div_ceil(8)
    };
    for scan in scans {
        let mut header = vec![scan.len() as u8];
        for &c in *scan {
            header.extend([c as u8 + 1, 0x00]);
        }
        header.extend([0, 63, 0]);
        file.extend(segment(0xDA, &header));
        let blocks = if let [c] = scan {
            let (h, v) = sampling[*c];
            along(width, h, max_h) * along(height, v, max_v)
        } else {
            let units = along(width, 1, 1).div_ceil(u64::from(max_h))
                * along(height, 1, 1).div_ceil(u64::from(max_v));
            let per_unit: u64 = scan
                .iter()
                .map(|&c| u64::from(sampling[c].0 * sampling[c].1))
                .sum();
            units * per_unit
        };
        file.extend(entropy(&vec![false; 2 * blocks as usize]));
    }
    file.extend([0xFF, 0xD9]);
    file
}

/// `jpeg` with a fill byte before the first stuffed zero of its scans.
pub fn with_a_fill_byte_in_a_scan(jpeg: &[u8]) -> Vec<u8> {
    let scan = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let stuffed = (scan + 2..jpeg.len() - 1)
        .find(|&i| jpeg[i..i + 2] == [0xFF, 0x00])
        .expect("a stuffed zero");
    let mut out = jpeg[..stuffed].to_vec();
    out.push(0xFF);
    out.extend_from_slice(&jpeg[stuffed..]);
    out
}
