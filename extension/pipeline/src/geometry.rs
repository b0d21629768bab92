//! Where the centre square lies in the *stored* pixels.
//!
//! EXIF orientation says how stored pixels must be turned to be seen upright.
//! The pipeline crops and resizes the stored pixels first and turns only the
//! small result, so the crop is chosen in the upright view (where "centre"
//! means something to a person) and mapped back to stored coordinates.

use image::metadata::Orientation;

/// A square region of the stored image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Square {
    pub left: u32,
    pub top: u32,
    pub side: u32,
}

/// Whether `orientation` swaps width and height.
pub fn transposes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The stored pixel shown at upright position `(x, y)`, for a stored image
/// of `width` x `height`.
fn stored_position(o: Orientation, width: u32, height: u32, x: u32, y: u32) -> (u32, u32) {
    let (w, h) = (width - 1, height - 1);
    match o {
        Orientation::NoTransforms => (x, y),
        Orientation::FlipHorizontal => (w - x, y),
        Orientation::FlipVertical => (x, h - y),
        Orientation::Rotate180 => (w - x, h - y),
        Orientation::Rotate90 => (y, h - x),
        Orientation::Rotate270 => (w - y, x),
        Orientation::Rotate90FlipH => (y, x),
        Orientation::Rotate270FlipH => (w - y, h - x),
    }
}

/// The width and height a stored `width` x `height` image has upright.
pub fn upright_size(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    if transposes(orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// The centre square of the upright image, in stored coordinates.
pub fn centre_square(width: u32, height: u32, orientation: Orientation) -> Square {
    let side = width.min(height);
    let (upright_w, upright_h) = upright_size(width, height, orientation);
    upright_square(
        width,
        height,
        orientation,
        (upright_w - side) / 2,
        (upright_h - side) / 2,
        side,
    )
}

/// The square of `side` at `(x0, y0)` of the upright image, which must lie
/// inside it, in stored coordinates.
pub fn upright_square(
    width: u32,
    height: u32,
    orientation: Orientation,
    x0: u32,
    y0: u32,
    side: u32,
) -> Square {
    let (x1, y1) = (x0 + side - 1, y0 + side - 1);
    let (ax, ay) = stored_position(orientation, width, height, x0, y0);
    let (bx, by) = stored_position(orientation, width, height, x1, y1);
    Square {
        left: ax.min(bx),
        top: ay.min(by),
        side,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, GenericImageView, Rgb, RgbImage};

    pub const ALL: [Orientation; 8] = [
        Orientation::NoTransforms,
        Orientation::FlipHorizontal,
        Orientation::Rotate180,
        Orientation::FlipVertical,
        Orientation::Rotate90FlipH,
        Orientation::Rotate90,
        Orientation::Rotate270FlipH,
        Orientation::Rotate270,
    ];

    /// Every pixel names its own stored position, so after turning we can
    /// read back where each upright pixel came from.
    fn coordinate_image(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 0])))
    }

    #[test]
    fn mapping_agrees_with_the_image_crate() {
        for o in ALL {
            for (w, h) in [(7, 4), (4, 7), (5, 5), (1, 9)] {
                let mut upright = coordinate_image(w, h);
                upright.apply_orientation(o);
                for (x, y, px) in upright.pixels() {
                    let (sx, sy) = stored_position(o, w, h, x, y);
                    assert_eq!(
                        (px[0] as u32, px[1] as u32),
                        (sx, sy),
                        "{o:?} {w}x{h} at {x},{y}"
                    );
                }
            }
        }
    }

    #[test]
    fn any_upright_square_maps_to_the_stored_pixels_it_shows() {
        for o in ALL {
            for (w, h) in [(9, 4), (4, 9), (6, 6)] {
                let stored = coordinate_image(w, h);
                let mut upright = stored.clone();
                upright.apply_orientation(o);
                let (uw, uh) = upright.dimensions();
                assert_eq!(upright_size(w, h, o), (uw, uh));
                for side in 1..=uw.min(uh) {
                    for (x, y) in [
                        (0, 0),
                        (uw - side, 0),
                        (0, uh - side),
                        (uw - side, uh - side),
                    ] {
                        let sq = upright_square(w, h, o, x, y, side);
                        let mut cropped = stored.crop_imm(sq.left, sq.top, sq.side, sq.side);
                        cropped.apply_orientation(o);
                        let expect = upright.crop_imm(x, y, side, side);
                        assert_eq!(
                            cropped.to_rgb8(),
                            expect.to_rgb8(),
                            "{o:?} {w}x{h} {x},{y}+{side}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn crop_is_the_upright_centre() {
        for o in ALL {
            for (w, h) in [
                (9, 4),
                (4, 9),
                (10, 3),
                (3, 10),
                (6, 6),
                (1, 20000),
                (20000, 1),
            ] {
                let sq = centre_square(w, h, o);
                assert_eq!(sq.side, w.min(h));
                assert!(
                    sq.left + sq.side <= w && sq.top + sq.side <= h,
                    "{o:?} {sq:?}"
                );
                if w * h > 1000 {
                    continue;
                }
                // Turning the stored crop must give the centre of the turned image.
                let stored = coordinate_image(w, h);
                let mut cropped = stored.crop_imm(sq.left, sq.top, sq.side, sq.side);
                cropped.apply_orientation(o);
                let mut upright = stored.clone();
                upright.apply_orientation(o);
                let (uw, uh) = upright.dimensions();
                let expect =
                    upright.crop_imm((uw - sq.side) / 2, (uh - sq.side) / 2, sq.side, sq.side);
                assert_eq!(cropped.to_rgb8(), expect.to_rgb8(), "{o:?} {w}x{h}");
            }
        }
    }
}
