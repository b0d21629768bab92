use std::fmt;

/// Everything that can go wrong between an uploaded byte string and an avatar.
///
/// Each error belongs to a [`Class`], which is what callers map to their own
/// world: the extension to a SQLSTATE, an HTTP route to a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Empty,
    UnknownFormat,
    UnsupportedFormat(String),
    UnsupportedFeature(String),
    ZeroDimension {
        width: u32,
        height: u32,
    },
    TooManyBytes {
        bytes: usize,
        limit: usize,
    },
    TooManyPixels {
        width: u32,
        height: u32,
        limit: u64,
    },
    Corrupt(String),
    /// A progressive JPEG of more scans than any encoder writes: each one
    /// makes the decoder walk every block again.
    TooManyScans {
        scans: u32,
        limit: u32,
    },
    /// A JPEG whose scans cover more blocks between them than the pixel
    /// limit allows: each block of a scan is a step of a decoder that
    /// cannot be interrupted.
    TooManyPasses {
        blocks: u64,
        limit: u64,
    },
    /// Decoding would cost more than twice the pixels' RGBA buffer, in a
    /// way no reduced decode avoids (a large progressive CMYK JPEG).
    TooCostly {
        what: String,
        bytes: u64,
    },
    SizeOutOfRange(i64),
    /// The user's crop does not lie inside the upright image.
    Crop(avatar_contract::crop::CropOutside),
    /// The system would not give the pipeline a buffer of this many bytes.
    OutOfMemory {
        bytes: usize,
    },
    Internal(String),
}

use avatar_contract::{Class, Upload};

impl Error {
    pub fn class(&self) -> Class {
        match self {
            Error::Empty
            | Error::UnknownFormat
            | Error::UnsupportedFormat(_)
            | Error::UnsupportedFeature(_)
            | Error::ZeroDimension { .. }
            | Error::SizeOutOfRange(_)
            | Error::Crop(_) => Class::InvalidParameter,
            Error::Corrupt(_) => Class::InvalidBinary,
            Error::TooManyBytes { .. }
            | Error::TooManyPixels { .. }
            | Error::TooManyScans { .. }
            | Error::TooManyPasses { .. }
            | Error::TooCostly { .. } => Class::LimitExceeded,
            Error::OutOfMemory { .. } => Class::OutOfMemory,
            Error::Internal(_) => Class::Internal,
        }
    }

    /// A sentence that helps the caller fix the problem, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Empty | Error::UnknownFormat | Error::UnsupportedFormat(_) => {
                Some(format!("Supported formats are {}.", Upload::list()))
            }
            Error::UnsupportedFeature(_) => {
                Some("Re-save the image as a baseline JPEG or an 8-bit PNG.".into())
            }
            Error::Corrupt(_) => {
                Some("The file may be truncated or damaged; upload it again.".into())
            }
            Error::TooManyBytes { .. } => Some(
                "Upload a smaller file, or raise pg_avatar.max_input_bytes (superuser only)."
                    .into(),
            ),
            Error::TooManyPixels { .. } => Some(
                "Scale the image down before uploading, or raise pg_avatar.max_input_pixels (superuser only).".into(),
            ),
            Error::TooManyScans { .. }
            | Error::TooManyPasses { .. }
            | Error::TooCostly { .. } => Some(
                "Re-save the image as a baseline (not progressive) JPEG, or scale it down.".into(),
            ),
            Error::SizeOutOfRange(_) => Some(format!(
                "Ask for a size from 1 to {}; avatar_size(n) tells which size you will get.",
                crate::size::MAX_SIZE
            )),
            Error::Crop(outside) => Some(outside.hint()),
            Error::OutOfMemory { .. } => Some(
                "Try again later, or lower pg_avatar.max_input_pixels so that uploads need less."
                    .into(),
            ),
            Error::ZeroDimension { .. } | Error::Internal(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => write!(f, "image is empty"),
            Error::UnknownFormat => write!(f, "image format not recognised"),
            Error::UnsupportedFormat(format) => write!(f, "image format {format} is not supported"),
            Error::UnsupportedFeature(what) => {
                write!(f, "image uses an unsupported feature: {what}")
            }
            Error::ZeroDimension { width, height } => {
                write!(f, "image has no pixels ({width}x{height})")
            }
            Error::TooManyBytes { bytes, limit } => {
                write!(f, "image is {bytes} bytes, over the limit of {limit} bytes")
            }
            Error::TooManyPixels {
                width,
                height,
                limit,
            } => write!(
                f,
                "image is {width}x{height} = {} pixels, over the limit of {limit} pixels",
                u64::from(*width) * u64::from(*height)
            ),
            Error::Corrupt(why) => write!(f, "image is corrupt: {why}"),
            Error::TooManyScans { scans, limit } => write!(
                f,
                "image is a JPEG of {scans} scans, over the limit of {limit}"
            ),
            Error::TooManyPasses { blocks, limit } => write!(
                f,
                "image is a JPEG whose scans cover {blocks} blocks between them, over the limit of {limit}"
            ),
            Error::TooCostly { what, bytes } => write!(
                f,
                "image would need {} MB to decode ({what}), over twice its pixels",
                bytes.div_ceil(1 << 20)
            ),
            Error::SizeOutOfRange(size) => {
                write!(f, "{}", avatar_contract::size::SizeOutOfRange(*size))
            }
            Error::Crop(outside) => write!(f, "{outside}"),
            Error::OutOfMemory { bytes } => write!(
                f,
                "out of memory: the image needs a buffer of {} MB",
                bytes.div_ceil(1 << 20)
            ),
            Error::Internal(why) => write!(f, "internal image pipeline error: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<avatar_contract::size::SizeOutOfRange> for Error {
    fn from(e: avatar_contract::size::SizeOutOfRange) -> Self {
        Error::SizeOutOfRange(e.0)
    }
}

impl From<image::ImageError> for Error {
    fn from(e: image::ImageError) -> Self {
        use image::ImageError as E;
        match e {
            E::Decoding(d) => Error::Corrupt(d.to_string()),
            E::Limits(l) => Error::Corrupt(format!("decoder limit reached: {l}")),
            E::Unsupported(u) => match u.kind() {
                image::error::UnsupportedErrorKind::Format(hint) => {
                    Error::UnsupportedFormat(hint.to_string())
                }
                _ => Error::UnsupportedFeature(u.to_string()),
            },
            // Every read is from memory, so an I/O error means the data ran out early.
            E::IoError(io) => Error::Corrupt(format!("truncated ({io})")),
            E::Parameter(p) => Error::Corrupt(p.to_string()),
            E::Encoding(enc) => Error::Internal(enc.to_string()),
        }
    }
}
