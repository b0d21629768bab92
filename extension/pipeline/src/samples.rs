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
