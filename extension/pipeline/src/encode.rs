//! Encoders for the formats pg_avatar serves. Each writes pixels alone, so
//! nothing from the upload (EXIF, GPS, ICC, XMP) can survive.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::Error;

pub use avatar_contract::Format;

/// Encodes square RGB pixels in `format`. `quality` applies to the lossy
/// formats.
pub fn encode(format: Format, rgb: &[u8], side: u32, quality: u8) -> Result<Vec<u8>, Error> {
    if rgb.len() as u64 != u64::from(side) * u64::from(side) * 3 {
        return Err(Error::Internal(format!(
            "{} bytes are not {side}x{side} RGB pixels",
            rgb.len()
        )));
    }
    match format {
        Format::Jpeg => jpeg(rgb, side, quality),
        Format::Png => png(rgb, side),
        Format::Webp => webp(rgb, side, quality),
    }
}

/// Baseline JPEG, 4:2:0.
pub fn jpeg(rgb: &[u8], side: u32, quality: u8) -> Result<Vec<u8>, Error> {
    let side = u16::try_from(side)
        .map_err(|_| Error::Internal(format!("side {side} too large for JPEG")))?;
    // The encoder grows its output, and holds a few rows of blocks, on its
    // own: a shortage it would meet is met here first. Compressed avatars
    // are rarely over 2 bits a pixel, a twelfth of the pixels.
    crate::decode::foresee(rgb.len())?;
    let mut out = Vec::new();
    out.try_reserve_exact(usize::from(side) * usize::from(side) / 4 + 1024)
        .map_err(|_| Error::OutOfMemory {
            bytes: rgb.len() / 12,
        })?;
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    // 4:2:0 is what cameras and browsers expect; it halves decode work for every later resize.
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder
        .encode(rgb, side, side, ColorType::Rgb)
        .map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

fn png(rgb: &[u8], side: u32) -> Result<Vec<u8>, Error> {
    use image::ImageEncoder;
    // The encoder's filtered rows and its growing output, at most the
    // pixels and a little.
    crate::decode::foresee(rgb.len() + rgb.len() / 8)?;
    let mut out = Vec::new();
    // Adaptive filtering with fast deflate: most of the size win of the
    // best setting at a fraction of its time.
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(rgb, side, side, image::ExtendedColorType::Rgb8)
    .map_err(|e| Error::Internal(format!("png encode: {e}")))?;
    Ok(out)
}

/// Lossy WebP through libwebp: the pure-Rust encoder is lossless only,
/// which makes photographs larger than the JPEG they replace.
fn webp(rgb: &[u8], side: u32, quality: u8) -> Result<Vec<u8>, Error> {
    let encoded = webp::Encoder::from_rgb(rgb, side, side)
        .encode_simple(false, f32::from(quality.clamp(1, 100)))
        .map_err(|e| Error::Internal(format!("webp encode: {e:?}")))?;
    Ok(encoded.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(side: u32) -> Vec<u8> {
        (0..side * side)
            .flat_map(|i| {
                let (x, y) = (i % side, i / side);
                [(x * 255 / side) as u8, (y * 255 / side) as u8, 128]
            })
            .collect()
    }

    #[test]
    fn every_format_decodes_to_the_same_picture() {
        let rgb = gradient(96);
        for format in Format::ALL {
            let bytes = encode(format, &rgb, 96, 90).unwrap();
            let guessed = image::guess_format(&bytes).unwrap();
            assert_eq!(guessed.to_mime_type(), format.mime_type());
            let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
            assert_eq!(back.dimensions(), (96, 96), "{format:?}");
            let worst = back
                .as_raw()
                .iter()
                .zip(&rgb)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            let bound = if format == Format::Png { 0 } else { 40 };
            assert!(worst <= bound, "{format:?}: off by {worst}");
        }
    }

    #[test]
    fn a_short_buffer_is_an_error_not_a_panic() {
        for format in Format::ALL {
            assert!(encode(format, &[0; 10], 4, 90).is_err());
        }
    }
}
