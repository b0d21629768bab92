//! Baseline JPEG out, with no metadata at all.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::Error;

/// Encodes square RGB pixels. Nothing from the upload (EXIF, GPS, ICC, XMP)
/// can survive, because the file is written from pixels alone.
pub fn jpeg(rgb: &[u8], side: u32, quality: u8) -> Result<Vec<u8>, Error> {
    let side = u16::try_from(side)
        .map_err(|_| Error::Internal(format!("side {side} too large for JPEG")))?;
    // Compressed avatars are rarely over 1 bit per pixel at usual qualities.
    let mut out = Vec::with_capacity(usize::from(side) * usize::from(side) / 4 + 1024);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    // 4:2:0 is what cameras and browsers expect; it halves decode work for every later resize.
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder
        .encode(rgb, side, side, ColorType::Rgb)
        .map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}
