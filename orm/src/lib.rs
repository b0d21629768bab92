//! Avatars for diesel models, stored and resized by the `pg_avatar`
//! PostgreSQL extension.
//!
//! ```ignore
//! use diesel_avatar::{Avatar, AvatarUrls};
//!
//! #[derive(Queryable, Identifiable, Avatar)]
//! #[diesel(table_name = users)]
//! struct User { id: i32, name: String }
//!
//! let id = user.set_avatar(conn, &upload)?;          // any JPEG, PNG, WebP, GIF, BMP
//! let jpeg = user.avatar(conn, 64)?;                  // 64x64 JPEG, memoized
//! let urls = AvatarUrls::new("https://cdn.example.com", "production", secret)?;
//! let url = user.avatar_url(conn, &urls, 128)?;       // .../avatar/{db key}/{id}?s=128&v=…
//! ```
//!
//! - [`Avatar`], the mixin, and its derive;
//! - [`functions`], the extension's SQL functions for the query builder;
//! - [`urls`], public URLs whose database segment is a keyed hash;
//! - [`libravatar`], the Libravatar protocol's request rules, and
//!   [`federation`], its DNS rules for the opt-in fallback;
//! - [`changes`], a subscription to avatar changes;
//! - `http` (feature `http`), the axum route that serves those URLs, and
//!   optionally a Libravatar-compatible one.

// Lets the derive's `diesel_avatar::` paths resolve inside this crate too.
extern crate self as diesel_avatar;

pub mod changes;
mod error;
pub mod federation;
mod format;
pub mod functions;
pub mod libravatar;
mod model;
pub mod urls;

#[cfg(feature = "http")]
pub mod http;

pub use diesel_avatar_derive::Avatar;
pub use error::{Error, Result};
pub use format::Format;
#[doc(hidden)]
pub use model::__private;
pub use model::{resource_url, Avatar, ResourceSql};
pub use urls::AvatarUrls;
pub use uuid::Uuid;
