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
//! - [`Avatar`], the mixin, and its derive, over [`AvatarKey`]s;
//! - [`functions`], the extension's SQL functions for the query builder;
//! - [`urls`], public URLs whose database segment is a keyed hash;
//! - [`changes`], a subscription to avatar changes.
//!
//! A library only: it starts no threads and serves nothing. The route
//! that serves the URLs is the `pg-avatar-server` crate.

pub mod changes;
mod error;
pub mod functions;
pub mod html;
mod key;
mod model;
pub mod urls;

pub use avatar_contract as contract;
pub use avatar_contract::{Crop, Format, Rating};
pub use diesel_avatar_derive::Avatar;
pub use error::{Error, Result};
pub use key::AvatarKey;
#[doc(hidden)]
pub use model::__private;
pub use model::{resource_url, Avatar, ResourceSql};
pub use urls::AvatarUrls;
pub use uuid::Uuid;
