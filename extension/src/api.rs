//! The SQL functions written in Rust. Each is a few lines around the
//! pipeline and the store; the rest of the API is plain SQL in `sql/`.

use avatar_contract::placeholder;
use avatar_contract::resource::{self, FALLBACK_PREFIX};
use avatar_contract::Crop;
use avatar_pipeline::{quantise, Format, Limits, Placeholder, Rendition};
use pgrx::prelude::*;

use crate::commit_check;
use crate::error::{invalid, raise, required};
use crate::guc;
use crate::store::{self, Tables};

/// Flat colours and sharp edges: a high quality costs few bytes.
const PLACEHOLDER_QUALITY: u8 = 92;

/// Stores `image` as the avatar of `resource` (for example `users,42`) and
/// returns its public id, which stays the same when the image is replaced.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_set(resource: Option<&str>, image: Option<&[u8]>) -> pgrx::Uuid {
    set(resource, image, None)
}

/// The same of the square the user chose: `crop_size` pixels from
/// (`crop_x`, `crop_y`) of the upright image, that is, after its EXIF
/// orientation. All three NULL is the centre square. A square not inside
/// the image is 22023, with the image's upright size in the hint. Called
/// with named arguments: `avatar_set(r, image, crop_x => 10, ...)`.
#[pg_extern(name = "avatar_set", volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_set_cropped(
    resource: Option<&str>,
    image: Option<&[u8]>,
    crop_x: Option<i32>,
    crop_y: Option<i32>,
    crop_size: Option<i32>,
) -> pgrx::Uuid {
    let crop = Crop::from_sql(crop_x, crop_y, crop_size).unwrap_or_else(|refused| {
        invalid(
            refused,
            "Give crop_x, crop_y and crop_size in pixels of the upright image, or none of them for the centre square.",
            SET,
        )
    });
    set(resource, image, crop)
}

const SET: &str = "avatar_set";

fn set(resource: Option<&str>, image: Option<&[u8]>, crop: Option<Crop>) -> pgrx::Uuid {
    let resource = required(resource, "resource", SET);
    let image = required(image, "image", SET);
    check_resource(resource, SET);
    let avatar = guc::pipeline()
        .normalise_cropped(image, guc::max_size(), crop)
        .unwrap_or_else(|e| raise(e, SET));
    store::save(resource, &avatar)
}

/// Raises 22023 unless a caller may write under `resource`: the rule of
/// `avatar_set`, which `avatar_set_email` (SQL) calls too.
#[pg_extern(immutable, strict, parallel_safe)]
fn avatar_resource_check(resource: &str) {
    check_resource(resource, "avatar_resource_check");
}

/// The resource of a row: `prefix` (its table's name) and each key part's
/// text, escaped by the contract's one encoding. diesel-avatar's SQL
/// expression calls this, and the delete trigger runs the same Rust. When
/// it would be longer than any resource may be, it is `''`, which names no
/// avatar either (no stored resource is blank), and its memory is bounded
/// by that length, whatever it is given.
#[pg_extern(immutable, strict, parallel_safe)]
fn avatar_resource(prefix: &str, parts: pgrx::Array<'_, &str>) -> String {
    const F: &str = "avatar_resource";
    if parts.contains_nulls() {
        required(None::<&str>, "a key part", F);
    }
    // Each part adds at least its comma: more parts than a resource has
    // bytes name nothing, and are not looked at.
    if parts.len() > resource::MAX_BYTES {
        return String::new();
    }
    let parts: Vec<&str> = parts.iter().map(Option::unwrap_or_default).collect();
    resource::encode_stored(prefix, &parts).unwrap_or_default()
}

fn check_resource(resource: &str, function: &'static str) {
    if let Err(refused) = resource::check(resource) {
        invalid(
            refused,
            "Name the owner as table and key, for example 'users,42'.",
            function,
        );
    }
}

/// Stores a copy that the route's Libravatar fallback fetched for the
/// address with this SHA-256, under `libravatar:<sha256>`; NULL if no such
/// address is set. A stranger's server sent these bytes, in answer to a
/// request for 512 px, so they get limits of their own.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_set_fallback(sha256: &str, image: &[u8]) -> Option<pgrx::Uuid> {
    if !commit_check::may_store() {
        error!("pg_avatar cannot store a fallback copy while its transaction commits");
    }
    let sha256 = store::address(sha256)?;
    let avatar = guc::pipeline_within(Limits::FALLBACK)
        .normalise(image, guc::max_size())
        .unwrap_or_else(|e| raise(e, "avatar_set_fallback"));
    let id = store::save(&format!("{FALLBACK_PREFIX}{sha256}"), &avatar);
    commit_check::copy_stored(&sha256);
    Some(id)
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
    generate(kind, seed, side, F)
}

/// The same at exactly `size` pixels, unquantised, as the Libravatar
/// protocol promises its clients. Nothing is stored either way.
#[pg_extern(immutable, strict, parallel_safe)]
fn avatar_default_exact(kind: &str, seed: &str, size: i32) -> Vec<u8> {
    const F: &str = "avatar_default_exact";
    generate(kind, seed, exact_side(size, F), F)
}

fn generate(kind: &str, seed: &str, side: u32, function: &'static str) -> Vec<u8> {
    let Some(placeholder) = Placeholder::parse(kind) else {
        invalid(
            format!("{kind:?} is not a kind of default avatar"),
            &format!("Use {}.", placeholder::names()),
            function,
        );
    };
    avatar_pipeline::placeholder::render(placeholder, seed, side, PLACEHOLDER_QUALITY)
        .unwrap_or_else(|e| raise(e, function))
}

/// A size as given, not quantised: the contract's range only.
fn exact_side(size: i32, function: &'static str) -> u32 {
    avatar_contract::size::exact(i64::from(size)).unwrap_or_else(|e| raise(e.into(), function))
}

/// The avatar `id` as a JPEG of exactly `avatar_size(size)` pixels square,
/// or NULL if there is no such avatar.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_get(id: pgrx::Uuid, size: i32) -> Option<Vec<u8>> {
    get(id, size, Format::Jpeg).map(|r| r.image)
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
    get(id, size, parse_format(format)).map(|r| r.image)
}

/// The rendition `avatar_get(id, size, format)` returns, with the SHA-1 of
/// the master it was made from: its version and ETag. Read apart, the two
/// could belong to different images if one is set in between; the HTTP
/// route serves this. No row for an unknown id.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_rendition(
    id: pgrx::Uuid,
    size: i32,
    format: &str,
) -> TableIterator<'static, (name!(sha1, String), name!(image, Vec<u8>))> {
    let found = get(id, size, parse_format(format));
    TableIterator::new(found.map(|r| (r.sha1, r.image)))
}

/// The same at exactly `size` pixels square, for the Libravatar route:
/// resized from the rendition of `avatar_size(size)`, which is memoized as
/// usual, while the exact size itself is made on each call and never
/// stored, so an avatar still has at most the quantised set of rows. It
/// costs one decode of at most that rendition.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn avatar_rendition_exact(
    id: pgrx::Uuid,
    size: i32,
    format: &str,
) -> TableIterator<'static, (name!(sha1, String), name!(image, Vec<u8>))> {
    const F: &str = "avatar_rendition_exact";
    let side = exact_side(size, F);
    let found = guc::pipeline()
        .rendition_exact(&mut Tables { id }, side, parse_format(format))
        .unwrap_or_else(|e| raise(e, F));
    TableIterator::new(found.map(|r| (r.sha1, r.image)))
}

const GET: &str = "avatar_get";

fn parse_format(format: &str) -> Format {
    Format::parse(format).unwrap_or_else(|| {
        invalid(
            format!("{format:?} is not a format pg_avatar serves"),
            &format!("Use one of {}.", Format::sql_list()),
            GET,
        )
    })
}

fn get(id: pgrx::Uuid, size: i32, format: Format) -> Option<Rendition> {
    let side = quantise(i64::from(size)).unwrap_or_else(|e| raise(e, GET));
    guc::pipeline()
        .rendition(&mut Tables { id }, side, format)
        .unwrap_or_else(|e| raise(e, GET))
}

/// XEP-0084's metadata for the renditions of `id` at `size`, one row per
/// format, PNG first (the one XEP-0084 requires): the SHA-1 of that
/// rendition's bytes (its XMPP id), its length, dimensions and type. All
/// three are of one image. Makes and memoizes what is missing. No rows for
/// an unknown id.
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
    const F: &str = "avatar_renditions";
    const FORMATS: [Format; 3] = [Format::Png, Format::Jpeg, Format::Webp];
    let side = quantise(i64::from(size)).unwrap_or_else(|e| raise(e, F));
    let renditions = guc::pipeline()
        .renditions(&mut Tables { id }, side, &FORMATS)
        .unwrap_or_else(|e| raise(e, F))
        .unwrap_or_default();
    let rows: Vec<_> = FORMATS
        .into_iter()
        .zip(renditions)
        .map(|(format, rendition)| {
            (
                format.name(),
                avatar_pipeline::sha1_hex(&rendition.image),
                rendition.image.len() as i32,
                side as i32,
                side as i32,
                format.mime_type(),
            )
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
