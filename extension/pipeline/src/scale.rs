//! Crop and resize in one pass, with SIMD Lanczos3.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::geometry::Square;
use crate::Error;

/// A square of an image in its pixels, where a crop chosen on the full
/// image lands on one shrunk on load: between pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub side: f64,
}

impl From<Square> for Region {
    fn from(s: Square) -> Region {
        Region {
            left: f64::from(s.left),
            top: f64::from(s.top),
            side: f64::from(s.side),
        }
    }
}

/// Resamples `crop` of an RGB image to `side` x `side` RGB pixels.
pub fn crop_resize(
    rgb: &[u8],
    width: u32,
    height: u32,
    crop: Region,
    side: u32,
) -> Result<Vec<u8>, Error> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("resize: {e}"));
    let src = ImageRef::new(width, height, rgb, PixelType::U8x3).map_err(|e| internal(&e))?;
    let out = crate::decode::buffer(side as usize * side as usize * 3)?;
    // The resizer's own buffer: one pass's output, the crop resampled along
    // one axis, which it allocates infallibly.
    crate::decode::foresee(side as usize * (crop.side.ceil() as usize) * 3)?;
    let mut dst = Image::from_vec_u8(side, side, out, PixelType::U8x3).map_err(|e| internal(&e))?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(crop.left, crop.top, crop.side, crop.side);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| internal(&e))?;
    Ok(dst.into_vec())
}
