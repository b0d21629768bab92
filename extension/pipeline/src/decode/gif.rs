//! A GIF's first frame, as palette indices, painted straight onto a white
//! RGB screen.
//!
//! Through the image crate a GIF cost its screen in RGBA, the frame in RGBA
//! again when it does not cover the screen exactly, and the frame's indices:
//! up to nine bytes a pixel, and allocations it made on its own. Here the
//! frame's indices (a byte a pixel) are the only buffer besides the RGB, and
//! both are allocated by this crate, fallibly.

use std::io::Cursor;
use std::num::NonZeroU64;

use image::metadata::Orientation;

use super::{buffer, check_dimensions, rgb_len, Decoded};
use crate::{Error, Limits};

pub fn decode(input: &[u8], limits: &Limits, checkpoint: &dyn Fn()) -> Result<Decoded, Error> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    // A frame may be larger than the screen, or placed off it: clipped
    // below, as browsers do.
    options.check_frame_consistency(false);
    // The frame's indices are checked against the pixel limit below; this
    // is the decoder's own second guard.
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        NonZeroU64::new(limits.max_input_pixels.max(1)).expect("not zero"),
    ));
    let mut decoder = options.read_info(Cursor::new(input)).map_err(gif_error)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    check_dimensions(width, height, limits)?;
    let frame = decoder
        .next_frame_info()
        .map_err(gif_error)?
        .ok_or_else(|| Error::Corrupt("a GIF without a frame".into()))?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (frame_width, frame_height) = (u32::from(frame.width), u32::from(frame.height));
    let transparent = frame.transparent;
    check_dimensions(frame_width, frame_height, limits)?;
    checkpoint();

    let mut indices = buffer(decoder.buffer_size())?;
    decoder.read_into_buffer(&mut indices).map_err(gif_error)?;
    checkpoint();
    let palette = decoder.palette().map_err(gif_error)?;
    let mut rgb = buffer(rgb_len(width, height)?)?;
    rgb.fill(255);
    let (width, frame_width) = (width as usize, frame_width as usize);
    let rows = indices.chunks_exact(frame_width.max(1));
    for (y, row) in rows.enumerate().take((height as usize).saturating_sub(top)) {
        let line = &mut rgb[(top + y) * width * 3..(top + y + 1) * width * 3];
        let visible = row.iter().take(width.saturating_sub(left));
        for (x, &index) in visible.enumerate() {
            if Some(index) == transparent {
                continue;
            }
            // An index past the palette is black, as browsers show it.
            let colour = palette
                .get(usize::from(index) * 3..usize::from(index) * 3 + 3)
                .unwrap_or(&[0, 0, 0]);
            line[(left + x) * 3..(left + x) * 3 + 3].copy_from_slice(colour);
        }
    }
    Ok(Decoded::new(
        rgb,
        width as u32,
        height,
        Orientation::NoTransforms,
    ))
}

fn gif_error(e: gif::DecodingError) -> Error {
    match e {
        gif::DecodingError::Io(io) => Error::Corrupt(format!("truncated ({io})")),
        other => Error::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the image crate shows of a GIF, on white, whatever the frame's
    /// place on the screen.
    #[test]
    fn the_first_frame_is_painted_where_it_sits() {
        for (screen, frame, at) in [
            ((40, 30), (40, 30), (0, 0)),
            ((40, 30), (20, 10), (5, 7)),
            ((40, 30), (39, 30), (1, 0)),
            ((10, 10), (30, 20), (0, 0)),
            ((10, 10), (8, 8), (6, 6)),
        ] {
            let file = crate::samples::gif_with_screen(screen, frame, at);
            let ours = decode(&file, &Limits::default(), &|| {}).unwrap();
            let theirs = image::load_from_memory(&file).unwrap().to_rgba8();
            assert_eq!((ours.width, ours.height), theirs.dimensions(), "{screen:?}");
            let mut expected = vec![0; ours.rgb.len()];
            super::super::onto_white(theirs.as_raw(), 4, &mut expected).unwrap();
            assert_eq!(ours.rgb, expected, "{screen:?} {frame:?} at {at:?}");
        }
    }

    #[test]
    fn a_frame_over_the_pixel_limit_is_refused_before_its_buffer() {
        let file = crate::samples::gif_with_screen((1, 1), (300, 200), (0, 0));
        let tight = Limits {
            max_input_pixels: 300 * 200 - 1,
            ..Limits::default()
        };
        assert!(matches!(
            decode(&file, &tight, &|| {}),
            Err(Error::TooManyPixels { .. })
        ));
    }
}
