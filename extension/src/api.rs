//! The SQL functions written in Rust. Each is a few lines around the
//! pipeline and the store; the rest of the API is plain SQL in `sql/`.

use avatar_pipeline::{quantise, render_source, Format, Placeholder};
use pgrx::prelude::*;

use crate::error::{invalid, raise, required};
use crate::guc;
use crate::store::{self, Lookup};

const MAX_RESOURCE_LEN: usize = 1024;
/// Flat colours and sharp edges: a high quality costs few bytes.
const PLACEHOLDER_QUALITY: u8 = 92;

/// Stores `image` as the avatar of `resource` (for example `users,42`) and
/// returns its public id, which stays the same when the image is replaced.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_set(resource: Option<&str>, image: Option<&[u8]>) -> pgrx::Uuid {
    const F: &str = "avatar_set";
    let resource = required(resource, "resource", F);
    let image = required(image, "image", F);
    if resource.trim().is_empty() || resource.len() > MAX_RESOURCE_LEN {
        invalid(
            format!("resource must be 1 to {MAX_RESOURCE_LEN} bytes of non-blank text"),
            "Name the owner as table and key, for example 'users,42'.",
            F,
        );
    }
    let avatar = guc::pipeline()
        .normalise(image, guc::max_size())
        .unwrap_or_else(|e| raise(e, F));
    store::save(resource, &avatar)
}

/// A generated avatar for `seed` (a name, a resource, an address digest):
/// `kind` is `initial` (the first letter of a name) or a Libravatar
/// default (`mm`/`mp`, `identicon`, `retro`, `monsterid`, `robohash`,
/// `pagan`, `blank`). JPEG, or PNG for `blank`,
/// of `avatar_size(size)` pixels square. The same arguments always give
/// the same bytes: the quality is fixed, not `pg_avatar.jpeg_quality`, so
/// the function is honestly immutable.
#[pg_extern(immutable, strict, parallel_safe)]
fn avatar_default(kind: &str, seed: &str, size: i32) -> Vec<u8> {
    const F: &str = "avatar_default";
    let side = quantise(i64::from(size)).unwrap_or_else(|e| raise(e, F));
    let Some(placeholder) = Placeholder::from_libravatar(kind) else {
        invalid(
            format!("{kind:?} is not a kind of default avatar"),
            "Use initial, mm, mp, identicon, retro, monsterid, robohash, pagan or blank.",
            F,
        );
    };
    placeholder
        .render(seed, side, PLACEHOLDER_QUALITY)
        .unwrap_or_else(|e| raise(e, F))
}

/// The avatar `id` as a JPEG of exactly `avatar_size(size)` pixels square,
/// or NULL if there is no such avatar.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_get(id: pgrx::Uuid, size: i32) -> Option<Vec<u8>> {
    get(id, size, Format::Jpeg)
}

/// The same in `format`: `jpeg`, `png` (lossless, as XEP-0084 asks) or
/// `webp` (lossy, at `pg_avatar.jpeg_quality`). Each format is memoized
/// on its own.
#[pg_extern(
    name = "avatar_get",
    volatile,
    strict,
    parallel_unsafe,
    security_definer
)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_get_as(id: pgrx::Uuid, size: i32, format: &str) -> Option<Vec<u8>> {
    let Some(format) = Format::parse(format) else {
        invalid(
            format!("{format:?} is not a format pg_avatar serves"),
            "Use 'jpeg', 'png' or 'webp'.",
            GET,
        );
    };
    get(id, size, format)
}

const GET: &str = "avatar_get";

fn get(id: pgrx::Uuid, size: i32, format: Format) -> Option<Vec<u8>> {
    let side = quantise(i64::from(size)).unwrap_or_else(|e| raise(e, GET));
    let (sha1, master_side) = match store::lookup(id, side, format)? {
        Lookup::Hit(image) => return Some(image),
        Lookup::Miss { sha1, master_side } => (sha1, master_side),
    };
    // Small sizes in every format come from the JPEG mezzanine.
    let source = match render_source(side, master_side) {
        Some(mezzanine) => match store::lookup(id, mezzanine, Format::Jpeg)? {
            Lookup::Hit(jpeg) => jpeg,
            Lookup::Miss { .. } => {
                let master = store::master(id)?;
                render_and_memoize(id, &master, mezzanine, Format::Jpeg, &sha1)
            }
        },
        None => store::master(id)?,
    };
    Some(render_and_memoize(id, &source, side, format, &sha1))
}

fn render_and_memoize(
    id: pgrx::Uuid,
    source: &[u8],
    side: u32,
    format: Format,
    sha1: &str,
) -> Vec<u8> {
    let image = guc::pipeline()
        .render_as(source, side, format)
        .unwrap_or_else(|e| raise(e, GET));
    if store::may_memoize() {
        store::memoize(id, side, format, sha1, &image);
    }
    image
}

/// XEP-0084's metadata for the renditions of `id` at `size`, one row per
/// format, PNG first (the one XEP-0084 requires): the SHA-1 of that
/// rendition's bytes (its XMPP id), its length, dimensions and type. Makes
/// and memoizes what is missing. No rows for an unknown id.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_renditions(
    id: pgrx::Uuid,
    size: i32,
) -> TableIterator<
    'static,
    (
        name!(format, &'static str),
        name!(sha1, String),
        name!(bytes, i32),
        name!(width, i32),
        name!(height, i32),
        name!(mime_type, &'static str),
    ),
> {
    let side = quantise(i64::from(size)).unwrap_or_else(|e| raise(e, "avatar_renditions")) as i32;
    let rows: Vec<_> = [Format::Png, Format::Jpeg, Format::Webp]
        .into_iter()
        .map_while(|format| {
            let image = get(id, size, format)?;
            Some((
                format.name(),
                avatar_pipeline::sha1_hex(&image),
                image.len() as i32,
                side,
                side,
                format.mime_type(),
            ))
        })
        .collect();
    TableIterator::new(rows)
}

/// The side avatar_get(id, size) returns: sizes are rounded up to a small
/// set so that each avatar caches at most 60 renditions.
#[pg_extern(immutable, strict, parallel_safe)]
fn avatar_size(size: i32) -> i32 {
    quantise(i64::from(size)).unwrap_or_else(|e| raise(e, "avatar_size")) as i32
}
