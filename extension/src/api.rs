//! The SQL functions written in Rust. Each is a few lines around the
//! pipeline and the store; the rest of the API is plain SQL in `sql/`.

use avatar_pipeline::{quantise, render_source, Placeholder};
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
/// `kind` is a Libravatar default (`mm`/`mp`, `identicon`, `retro`,
/// `monsterid`, `robohash`, `pagan`, `blank`). JPEG, or PNG for `blank`,
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
            "Use mm, mp, identicon, retro, monsterid, robohash, pagan or blank.",
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
    let side = quantise(i64::from(size)).unwrap_or_else(|e| raise(e, GET));
    let (sha1, master_side) = match store::lookup(id, side)? {
        Lookup::Hit(jpeg) => return Some(jpeg),
        Lookup::Miss { sha1, master_side } => (sha1, master_side),
    };
    let source = match render_source(side, master_side) {
        Some(mezzanine) => match store::lookup(id, mezzanine)? {
            Lookup::Hit(jpeg) => jpeg,
            Lookup::Miss { .. } => render_and_memoize(id, &store::master(id)?, mezzanine, &sha1),
        },
        None => store::master(id)?,
    };
    Some(render_and_memoize(id, &source, side, &sha1))
}

const GET: &str = "avatar_get";

fn render_and_memoize(id: pgrx::Uuid, source: &[u8], side: u32, sha1: &str) -> Vec<u8> {
    let jpeg = guc::pipeline()
        .render(source, side)
        .unwrap_or_else(|e| raise(e, GET))
        .jpeg;
    if store::may_memoize() {
        store::memoize(id, side, sha1, &jpeg);
    }
    jpeg
}

/// The side avatar_get(id, size) returns: sizes are rounded up to a small
/// set so that each avatar caches at most 60 renditions.
#[pg_extern(immutable, strict, parallel_safe)]
fn avatar_size(size: i32) -> i32 {
    quantise(i64::from(size)).unwrap_or_else(|e| raise(e, "avatar_size")) as i32
}
