//! What every part of pg_avatar must agree on, in one place: the SQL
//! extension, the image pipeline, diesel-avatar and the server all use
//! these definitions rather than writing them down again. The SQL that
//! cannot use them (a `CHECK`, a trigger's literal) is tested against them
//! (`tests/sql_copies.rs`).
//!
//! No dependencies, so the smallest client can have it.

pub mod crop;
pub mod error;
pub mod format;
pub mod limits;
pub mod notify;
pub mod placeholder;
pub mod rating;
pub mod resource;
pub mod size;

pub use crop::Crop;
pub use error::{Class, MARKER};
pub use format::{Format, Upload};
pub use rating::Rating;
