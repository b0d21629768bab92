//! A user's own crop: a square in pixels of the upright image, that is,
//! after its EXIF orientation, as a person sees and chooses it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Crop {
    /// From the upright image's left edge.
    pub x: u32,
    /// From the upright image's top edge.
    pub y: u32,
    /// The square's side, at least 1.
    pub size: u32,
}

/// A crop that does not lie inside the upright image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropOutside {
    pub crop: Crop,
    /// The upright image's width and height.
    pub upright: (u32, u32),
}

impl Crop {
    /// A crop from SQL's three integers: all given, or none (`Ok(None)`,
    /// the centre square). Negative values cannot lie inside any image.
    pub fn from_sql(
        x: Option<i32>,
        y: Option<i32>,
        size: Option<i32>,
    ) -> Result<Option<Crop>, CropArguments> {
        match (x, y, size) {
            (None, None, None) => Ok(None),
            (Some(x), Some(y), Some(size)) => {
                let unsigned = |v: i32| u32::try_from(v).map_err(|_| CropArguments::Negative);
                Ok(Some(Crop {
                    x: unsigned(x)?,
                    y: unsigned(y)?,
                    size: unsigned(size)?,
                }))
            }
            _ => Err(CropArguments::Partial),
        }
    }

    /// Whether the square lies inside an upright image of `width` x
    /// `height`, with a side of at least 1.
    pub fn check(self, width: u32, height: u32) -> Result<Crop, CropOutside> {
        let fits =
            |start: u32, extent: u32| u64::from(start) + u64::from(self.size) <= u64::from(extent);
        if self.size >= 1 && fits(self.x, width) && fits(self.y, height) {
            Ok(self)
        } else {
            Err(CropOutside {
                crop: self,
                upright: (width, height),
            })
        }
    }
}

/// SQL's crop arguments that name no square at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropArguments {
    /// Some of `crop_x`, `crop_y` and `crop_size` were given, not all.
    Partial,
    Negative,
}

impl fmt::Display for CropArguments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CropArguments::Partial => {
                write!(
                    f,
                    "a crop needs all of crop_x, crop_y and crop_size, or none"
                )
            }
            CropArguments::Negative => write!(f, "a crop's position and size cannot be negative"),
        }
    }
}

impl fmt::Display for CropOutside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Crop { x, y, size } = self.crop;
        let (w, h) = self.upright;
        if size == 0 {
            write!(f, "the crop at ({x}, {y}) has a side of 0 pixels")
        } else {
            write!(
                f,
                "the crop of {size} px at ({x}, {y}) does not lie inside the image, which is {w}x{h} upright"
            )
        }
    }
}

impl CropOutside {
    /// What the caller needs to choose again.
    pub fn hint(&self) -> String {
        let (w, h) = self.upright;
        format!(
            "The image is {w}x{h} pixels once turned upright by its EXIF orientation: \
             choose crop_x + crop_size <= {w} and crop_y + crop_size <= {h}, with crop_size >= 1."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_or_not() {
        let c = |x, y, size| Crop { x, y, size };
        for ok in [c(0, 0, 1), c(10, 0, 20), c(0, 0, 20), c(9, 19, 1)] {
            assert_eq!(ok.check(30, 20), Ok(ok), "{ok:?}");
        }
        for bad in [
            c(0, 0, 0),
            c(0, 0, 31),
            c(11, 0, 20),
            c(0, 1, 20),
            c(30, 0, 1),
            c(u32::MAX, 0, 1),
            c(0, 0, u32::MAX),
        ] {
            let refused = bad.check(30, 20).unwrap_err();
            assert_eq!(refused.upright, (30, 20));
            assert!(refused.hint().contains("30x20"), "{}", refused.hint());
        }
    }

    #[test]
    fn sql_arguments() {
        assert_eq!(Crop::from_sql(None, None, None), Ok(None));
        assert_eq!(
            Crop::from_sql(Some(1), Some(2), Some(3)),
            Ok(Some(Crop {
                x: 1,
                y: 2,
                size: 3
            }))
        );
        for partial in [
            (Some(1), None, None),
            (None, None, Some(3)),
            (Some(1), Some(2), None),
        ] {
            assert_eq!(
                Crop::from_sql(partial.0, partial.1, partial.2),
                Err(CropArguments::Partial)
            );
        }
        assert_eq!(
            Crop::from_sql(Some(-1), Some(0), Some(3)),
            Err(CropArguments::Negative)
        );
    }
}
