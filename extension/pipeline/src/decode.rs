//! From untrusted bytes to upright-able RGB pixels, within limits.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::{Error, Limits};

/// Decoded pixels as stored in the file: 8-bit RGB with any alpha already
/// composited onto white, plus the orientation that makes them upright.
pub struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

const ACCEPTED: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Bmp,
];

pub fn decode(input: &[u8], limits: &Limits, checkpoint: &dyn Fn()) -> Result<Decoded, Error> {
    if input.is_empty() {
        return Err(Error::Empty);
    }
    if input.len() > limits.max_input_bytes {
        return Err(Error::TooManyBytes {
            bytes: input.len(),
            limit: limits.max_input_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let format = reader.format().ok_or(Error::UnknownFormat)?;
    if !ACCEPTED.contains(&format) {
        return Err(Error::UnsupportedFormat(
            format!("{format:?}").to_uppercase(),
        ));
    }
    // Building the decoder parses only the header, so the pixel limit is
    // enforced before any buffer sized by the (untrusted) dimensions exists.
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
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
    // A damaged EXIF block must not cost the user their upload: show it as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    checkpoint();
    let image = DynamicImage::from_decoder(decoder)?;
    checkpoint();
    let (width, height) = (image.width(), image.height());
    Ok(Decoded {
        rgb: flatten_onto_white(image),
        width,
        height,
        orientation,
    })
}

/// 8-bit RGB, with transparent pixels shown over white as a browser would.
fn flatten_onto_white(image: DynamicImage) -> Vec<u8> {
    if !image.color().has_alpha() {
        return image.into_rgb8().into_raw();
    }
    // Compacts RGBA into RGB in place: pixel i is read whole before its
    // three bytes are written at 3i, which never passes the unread 4(i+1).
    let mut buf = image.into_rgba8().into_raw();
    let pixels = buf.len() / 4;
    for i in 0..pixels {
        let [r, g, b, a] = [buf[4 * i], buf[4 * i + 1], buf[4 * i + 2], buf[4 * i + 3]];
        let a = u32::from(a);
        let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        buf[3 * i] = blend(r);
        buf[3 * i + 1] = blend(g);
        buf[3 * i + 2] = blend(b);
    }
    buf.truncate(pixels * 3);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn alpha_lands_on_white() {
        let img = RgbaImage::from_fn(4, 1, |x, _| match x {
            0 => Rgba([0, 0, 0, 0]),     // fully transparent black: white
            1 => Rgba([0, 0, 0, 255]),   // opaque black stays black
            2 => Rgba([255, 0, 0, 128]), // half red: pink
            _ => Rgba([10, 20, 30, 255]),
        });
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(img));
        assert_eq!(rgb, vec![255, 255, 255, 0, 0, 0, 255, 127, 127, 10, 20, 30]);
    }

    #[test]
    fn sixteen_bit_grey_alpha_is_flattened() {
        let img =
            image::ImageBuffer::<image::LumaA<u16>, _>::from_pixel(2, 2, image::LumaA([0, 0]));
        assert_eq!(
            flatten_onto_white(DynamicImage::ImageLumaA16(img)),
            vec![255; 12]
        );
    }
}
