//! Whether a file is whole, before any decoder runs. Decoders are lenient
//! by design (a cut JPEG decodes with a grey lower part, a cut progressive
//! one at its partial quality, so browsers show something); an avatar is
//! stored and served for years, so a partial upload is refused as what it
//! is (SQLSTATE 22P03) and the user can send it again. PNG's own end
//! (IEND, every CRC) is checked by its decoder.

use image::ImageFormat;

use crate::Error;

mod jpeg;

pub use jpeg::{Walked, MAX_SCANS as MAX_JPEG_SCANS};

/// What the check learnt of a whole file.
pub enum Whole {
    /// A JPEG, as the walk read it.
    Jpeg(Walked),
    Other,
}

/// How closely a file is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scrutiny {
    /// An upload: every part, down to a JPEG's every block.
    Upload,
    /// A master or rendition pg_avatar wrote: its container only.
    Stored,
}

/// `max_pixels` bounds what a JPEG's walk may allocate: a frame over it is
/// [`Error::TooManyPixels`].
pub fn check(
    format: ImageFormat,
    data: &[u8],
    max_pixels: u64,
    scrutiny: Scrutiny,
    checkpoint: &dyn Fn(),
) -> Result<Whole, Error> {
    let whole = match format {
        ImageFormat::Jpeg => {
            let entropy = scrutiny == Scrutiny::Upload;
            return jpeg::walk(data, max_pixels, entropy, checkpoint)
                .map(Whole::Jpeg)
                .map_err(|partial| jpeg_error(partial, max_pixels));
        }
        ImageFormat::Gif => gif_end(data).is_some(),
        ImageFormat::WebP => riff_whole(data),
        _ => true,
    };
    if whole {
        Ok(Whole::Other)
    } else {
        Err(Error::Corrupt(
            "truncated (the file ends before its last part)".into(),
        ))
    }
}

fn jpeg_error(partial: jpeg::Partial, max_pixels: u64) -> Error {
    use jpeg::Partial as P;
    match partial {
        P::NoMemory(bytes) => Error::OutOfMemory { bytes },
        P::TooManyPixels(frame) => Error::TooManyPixels {
            width: frame.width.into(),
            height: frame.height.into(),
            limit: max_pixels,
        },
        P::TooManyScans(scans) => Error::TooManyScans {
            scans,
            limit: MAX_JPEG_SCANS,
        },
        P::TooManyPasses(blocks, limit) => Error::TooManyPasses { blocks, limit },
        P::Unsupported(what) => Error::UnsupportedFeature(what.into()),
        _ => Error::Corrupt(partial.describe().into()),
    }
}

/// The frame header and scans of a whole JPEG, or `None`.
#[cfg(test)]
pub fn jpeg_frame(data: &[u8]) -> Option<jpeg::JpegFrame> {
    jpeg::walk(data, u64::MAX, true, &|| {})
        .ok()
        .map(|w| w.frame)
}

/// The offset just past a GIF's trailer, walking its blocks: a file cut
/// anywhere, even after the first frame, has none.
fn gif_end(data: &[u8]) -> Option<usize> {
    if !matches!(data.get(..6)?, b"GIF87a" | b"GIF89a") {
        return None;
    }
    let packed = *data.get(10)?;
    let mut i = 13 + colour_table(packed);
    loop {
        match *data.get(i)? {
            0x3B => return Some(i + 1),
            0x21 => i = sub_blocks(data, i + 2)?,
            0x2C => {
                let packed = *data.get(i + 9)?;
                // Descriptor, local colour table, LZW minimum code size.
                i = sub_blocks(data, i + 10 + colour_table(packed) + 1)?;
            }
            _ => return None,
        }
    }
}

fn colour_table(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    }
}

/// Past a chain of data sub-blocks and its terminator.
fn sub_blocks(data: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = usize::from(*data.get(i)?);
        i += 1;
        if len == 0 {
            return Some(i);
        }
        i += len;
        data.get(..i)?;
    }
}

/// A RIFF container holds as many bytes as its header says.
fn riff_whole(data: &[u8]) -> bool {
    data.get(4..8)
        .map(|size| u32::from_le_bytes(size.try_into().expect("four bytes")) as usize)
        .is_some_and(|size| size >= 4 && data.len() >= size.saturating_add(8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;
    use image::DynamicImage;

    fn files() -> Vec<(ImageFormat, Vec<u8>)> {
        let photo = DynamicImage::ImageRgb8(samples::photo(90, 60));
        [ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP]
            .into_iter()
            .map(|f| (f, samples::encode(&photo, f)))
            .collect()
    }

    #[test]
    fn whole_files_pass_and_every_cut_fails() {
        for (format, whole) in files() {
            assert!(
                check(format, &whole, u64::MAX, Scrutiny::Upload, &|| {}).is_ok(),
                "{format:?}"
            );
            for cut in 0..whole.len() {
                assert!(
                    check(format, &whole[..cut], u64::MAX, Scrutiny::Upload, &|| {}).is_err(),
                    "{format:?} cut to {cut} of {}",
                    whole.len()
                );
            }
        }
    }

    #[test]
    fn a_gifs_first_frame_may_be_larger_than_its_screen() {
        let gif = samples::gif_with_screen((1, 1), (300, 200), (0, 0));
        assert!(check(ImageFormat::Gif, &gif, u64::MAX, Scrutiny::Upload, &|| {}).is_ok());
    }

    #[test]
    fn repeated_scans_are_counted() {
        let image = samples::photo(32, 32);
        let ordinary = jpeg_frame(&samples::progressive_jpeg_with_scans(&image, 0))
            .unwrap()
            .scans;
        let more = jpeg_frame(&samples::progressive_jpeg_with_scans(&image, 50))
            .unwrap()
            .scans;
        assert_eq!(more, ordinary + 50);
        let bomb = samples::progressive_jpeg_with_scans(&image, MAX_JPEG_SCANS);
        assert!(matches!(
            check(ImageFormat::Jpeg, &bomb, u64::MAX, Scrutiny::Upload, &|| {}),
            Err(Error::TooManyScans { .. })
        ));
    }

    #[test]
    fn trailing_data_and_stray_bytes_are_tolerated() {
        for (format, mut whole) in files() {
            whole.extend_from_slice(b"camera trailer");
            assert!(
                check(format, &whole, u64::MAX, Scrutiny::Upload, &|| {}).is_ok(),
                "{format:?}"
            );
        }
        let (_, jpeg) = files().remove(0);
        // Stray bytes between two segments, as some encoders write.
        let mut stray = jpeg[..2].to_vec();
        stray.extend_from_slice(b"\x00\x00");
        stray.extend_from_slice(&jpeg[2..]);
        assert!(check(
            ImageFormat::Jpeg,
            &stray,
            u64::MAX,
            Scrutiny::Upload,
            &|| {}
        )
        .is_ok());
    }

    #[test]
    fn the_frame_header_tells_progressive_from_baseline() {
        let rgb = samples::photo(32, 32).into_raw();
        for progressive in [false, true] {
            let mut out = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
            encoder.set_progressive(progressive);
            encoder
                .encode(&rgb, 32, 32, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            let frame = jpeg_frame(&out).expect("a whole JPEG");
            assert_eq!(frame.progressive, progressive);
            assert_eq!(frame.components, 3);
            assert_eq!(frame.scans > 1, progressive, "{} scans", frame.scans);
        }
    }

    /// What a progressive decoder holds: 2 bytes a coefficient, per
    /// component at its own resolution, whole blocks only.
    #[test]
    fn coefficients_are_counted_at_each_components_resolution() {
        let rgb = samples::photo(100, 60).into_raw();
        for (sampling, bytes) in [
            // 13 x 8 blocks in each of three full-resolution components.
            (jpeg_encoder::SamplingFactor::F_1_1, 3 * 13 * 8 * 128),
            // Luma in full, chroma at half each way: 7 x 4 blocks.
            (
                jpeg_encoder::SamplingFactor::F_2_2,
                (13 * 8 + 2 * 7 * 4) * 128,
            ),
        ] {
            let mut out = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
            encoder.set_progressive(true);
            encoder.set_sampling_factor(sampling);
            encoder
                .encode(&rgb, 100, 60, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            assert_eq!(
                jpeg_frame(&out).unwrap().coefficient_bytes(100, 60),
                bytes,
                "{sampling:?}"
            );
        }
    }
}
