//! Whether a file is whole, from its container alone, before any decoder
//! runs. Decoders are lenient by design (a cut JPEG decodes with a grey
//! lower part, a cut progressive one at its partial quality, so browsers
//! show something); an avatar is stored and served for years, so a partial
//! upload is refused as what it is (SQLSTATE 22P03) and the user can send
//! it again. PNG's own end (IEND, every CRC) is checked by its decoder.

use image::ImageFormat;

use crate::Error;

pub fn check(format: ImageFormat, data: &[u8]) -> Result<(), Error> {
    let whole = match format {
        ImageFormat::Jpeg => jpeg_end(data).is_some(),
        ImageFormat::Gif => gif_end(data).is_some(),
        ImageFormat::WebP => riff_whole(data),
        _ => true,
    };
    if whole {
        Ok(())
    } else {
        Err(Error::Corrupt(
            "truncated (the file ends before its last part)".into(),
        ))
    }
}

/// What a JPEG's frame header and scans say about the cost of decoding it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JpegFrame {
    pub progressive: bool,
    pub components: u8,
    /// Each component's horizontal and vertical sampling factors.
    pub sampling: [(u8, u8); 4],
    /// Start-of-scan markers before the end.
    pub scans: u32,
}

impl JpegFrame {
    /// The bytes a progressive decoder holds for every coefficient of a
    /// `width` x `height` image until its last scan: 64 of 2 bytes a block,
    /// in each component at its own resolution.
    pub fn coefficient_bytes(&self, width: u32, height: u32) -> u64 {
        let components = &self.sampling[..usize::from(self.components.min(4))];
        let max_h = components.iter().map(|c| c.0).max().unwrap_or(1).max(1);
        let max_v = components.iter().map(|c| c.1).max().unwrap_or(1).max(1);
        let blocks = |extent: u32, factor: u8, max: u8| {
            (u64::from(extent) * u64::from(factor)).div_ceil(u64::from(max) * 8)
        };
        components
            .iter()
            .map(|&(h, v)| blocks(width, h, max_h) * blocks(height, v, max_v) * 128)
            .sum()
    }
}

/// The offset just past the end-of-image marker, walking the marker
/// segments and the entropy-coded data between them as libjpeg does
/// (stray bytes between segments are skipped, fill bytes allowed). Data
/// after the end (camera trailers) is not looked at.
fn jpeg_end(data: &[u8]) -> Option<usize> {
    walk_jpeg(data, |_, _| {})
}

/// The frame header (SOFn) of a JPEG and its number of scans, or a
/// default if it has none.
pub fn jpeg_frame(data: &[u8]) -> JpegFrame {
    let mut frame = JpegFrame::default();
    walk_jpeg(data, |marker, segment| {
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            frame.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            frame.components = segment.get(5).copied().unwrap_or(0);
            for (i, sampling) in frame.sampling.iter_mut().enumerate() {
                let factors = segment.get(6 + 3 * i + 1).copied().unwrap_or(0x11);
                *sampling = (factors >> 4, factors & 0x0F);
            }
        } else if marker == 0xDA {
            frame.scans += 1;
        }
    });
    frame
}

fn walk_jpeg(data: &[u8], mut segment: impl FnMut(u8, &[u8])) -> Option<usize> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    loop {
        i += data.get(i..)?.iter().position(|&b| b == 0xFF)?;
        i += data.get(i..)?.iter().position(|&b| b != 0xFF)?;
        let marker = data[i];
        i += 1;
        match marker {
            0xD9 => return Some(i),
            // Standalone markers, and a stuffed zero outside a scan.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        segment(marker, data.get(i + 2..i + len)?);
        i += len;
        if marker == 0xDA {
            // Entropy-coded data runs to the first marker that is neither a
            // stuffed zero nor a restart.
            loop {
                i += data.get(i..)?.iter().position(|&b| b == 0xFF)?;
                let after = i + data.get(i..)?.iter().position(|&b| b != 0xFF)?;
                match data[after] {
                    0x00 | 0xD0..=0xD7 => i = after + 1,
                    _ => break,
                }
            }
        }
    }
}

/// The offset just past a GIF's trailer, walking its blocks: a file cut
/// anywhere, even after the first frame, has none.
fn gif_end(data: &[u8]) -> Option<usize> {
    walk_gif(data, |_, _| {})
}

/// The size of a GIF's first frame, which decoders allocate for whatever
/// its logical screen says, or `None` if it has no frame.
pub fn gif_first_frame(data: &[u8]) -> Option<(u16, u16)> {
    let mut first = None;
    walk_gif(data, |width, height| {
        first.get_or_insert((width, height));
    });
    first
}

fn walk_gif(data: &[u8], mut frame: impl FnMut(u16, u16)) -> Option<usize> {
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
                let le16 =
                    |at: usize| Some(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]));
                frame(le16(i + 5)?, le16(i + 7)?);
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
            assert_eq!(check(format, &whole), Ok(()), "{format:?}");
            for cut in 0..whole.len() {
                assert!(
                    check(format, &whole[..cut]).is_err(),
                    "{format:?} cut to {cut} of {}",
                    whole.len()
                );
            }
        }
    }

    #[test]
    fn a_gifs_first_frame_may_be_larger_than_its_screen() {
        let gif = samples::gif_with_screen((1, 1), (300, 200));
        assert_eq!(check(ImageFormat::Gif, &gif), Ok(()));
        assert_eq!(gif_first_frame(&gif), Some((300, 200)));
    }

    #[test]
    fn repeated_scans_are_counted() {
        let image = samples::photo(32, 32);
        let ordinary = jpeg_frame(&samples::progressive_jpeg_with_scans(&image, 0)).scans;
        let bomb = jpeg_frame(&samples::progressive_jpeg_with_scans(&image, 200)).scans;
        assert_eq!(bomb, ordinary + 200);
    }

    #[test]
    fn trailing_data_and_stray_bytes_are_tolerated() {
        for (format, mut whole) in files() {
            whole.extend_from_slice(b"camera trailer");
            assert_eq!(check(format, &whole), Ok(()), "{format:?}");
        }
        let (_, jpeg) = files().remove(0);
        // Stray bytes between two segments, as some encoders write.
        let mut stray = jpeg[..2].to_vec();
        stray.extend_from_slice(b"\x00\x00");
        stray.extend_from_slice(&jpeg[2..]);
        assert_eq!(check(ImageFormat::Jpeg, &stray), Ok(()));
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
            let frame = jpeg_frame(&out);
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
                jpeg_frame(&out).coefficient_bytes(100, 60),
                bytes,
                "{sampling:?}"
            );
        }
    }
}
