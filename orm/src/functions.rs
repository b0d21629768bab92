//! The extension's SQL functions as diesel expressions, so they compose in
//! the query builder: `users.select((id, avatar_id(resource)))` lists
//! avatars in one query instead of one per row.

use diesel::define_sql_function;
use diesel::sql_types::{Bytea, Integer, Nullable, Text, Uuid};

define_sql_function! {
    /// Stores an upload as the avatar of `resource`; returns its public id.
    #[sql_name = "avatar.avatar_set"]
    fn avatar_set(resource: Text, image: Bytea) -> Uuid;
}

define_sql_function! {
    /// The same with the square the user chose, in pixels of the upright
    /// image (after its EXIF orientation): all three NULL is the centre.
    #[sql_name = "avatar.avatar_set"]
    fn avatar_set_cropped(
        resource: Text,
        image: Bytea,
        crop_x: Nullable<Integer>,
        crop_y: Nullable<Integer>,
        crop_size: Nullable<Integer>,
    ) -> Uuid;
}

define_sql_function! {
    /// Rates `resource`'s avatar `g`, `pg`, `r` or `x` (see
    /// [`crate::Rating`]); true if it has one.
    #[sql_name = "avatar.avatar_set_rating"]
    fn avatar_set_rating(resource: Text, rating: Text) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// Sets (or with NULL, clears) the alt text of `resource`'s avatar;
    /// true if it has one.
    #[sql_name = "avatar.avatar_set_description"]
    fn avatar_set_description(resource: Text, description: Nullable<Text>) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// The alt text of a served avatar, or NULL.
    #[sql_name = "avatar.avatar_description"]
    fn avatar_description(id: Nullable<Uuid>) -> Nullable<Text>;
}

define_sql_function! {
    /// The avatar as a JPEG of `avatar_size(size)` pixels square, or NULL.
    #[sql_name = "avatar.avatar_get"]
    fn avatar_get(id: Nullable<Uuid>, size: Integer) -> Nullable<Bytea>;
}

define_sql_function! {
    /// The same in a `format`: `'jpeg'`, `'png'` or `'webp'` (see [`crate::Format`]).
    #[sql_name = "avatar.avatar_get"]
    fn avatar_get_as(id: Nullable<Uuid>, size: Integer, format: Text) -> Nullable<Bytea>;
}

define_sql_function! {
    /// The side that `avatar_get` returns for a requested size.
    #[sql_name = "avatar.avatar_size"]
    fn avatar_size(size: Integer) -> Integer;
}

define_sql_function! {
    /// The public id of a resource's avatar, or NULL.
    #[sql_name = "avatar.avatar_id"]
    fn avatar_id(resource: Text) -> Nullable<Uuid>;
}

define_sql_function! {
    /// The SHA-1 of an avatar's current image (lower-case hex), or NULL:
    /// the version in public URLs and the HTTP ETag.
    #[sql_name = "avatar.avatar_sha1"]
    fn avatar_sha1(id: Nullable<Uuid>) -> Nullable<Text>;
}

define_sql_function! {
    /// Removes a resource's avatar and its cache; true if there was one.
    #[sql_name = "avatar.avatar_delete"]
    fn avatar_delete(resource: Text) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// A generated avatar (`mm`, `identicon`, `retro`, `blank`, …) for a seed.
    #[sql_name = "avatar.avatar_default"]
    fn avatar_default(kind: Text, seed: Text, size: Integer) -> Bytea;
}

define_sql_function! {
    /// The avatar of `resource`, or a generated one of `kind` (such as
    /// `initial`) seeded by `name`, or by the resource when `name` is NULL.
    #[sql_name = "avatar.avatar_get_or_default"]
    fn avatar_get_or_default(
        resource: Text,
        size: Integer,
        kind: Text,
        name: Nullable<Text>,
    ) -> Bytea;
}

define_sql_function! {
    /// Lets the Libravatar route find `resource`'s avatar by an address.
    #[sql_name = "avatar.avatar_set_email"]
    fn avatar_set_email(resource: Text, email: Text);
}

define_sql_function! {
    /// Forgets one of `resource`'s addresses; true if it had it.
    #[sql_name = "avatar.avatar_unset_email"]
    fn avatar_unset_email(resource: Text, email: Text) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// The avatar an address digest (MD5 or SHA-256 hex) points to, or NULL.
    #[sql_name = "avatar.avatar_by_digest"]
    fn avatar_by_digest(digest: Text) -> Nullable<Uuid>;
}

define_sql_function! {
    /// The same for a request that accepts ratings up to `max_rating`
    /// (Libravatar's `r=`): NULL for an avatar rated above it.
    #[sql_name = "avatar.avatar_by_digest"]
    fn avatar_by_digest_rated(digest: Text, max_rating: Text) -> Nullable<Uuid>;
}

define_sql_function! {
    /// A generated avatar of exactly `size` pixels, not rounded to a
    /// stored size: what Libravatar clients are promised.
    #[sql_name = "avatar.avatar_default_exact"]
    fn avatar_default_exact(kind: Text, seed: Text, size: Integer) -> Bytea;
}

define_sql_function! {
    /// Stops serving `resource`'s avatar but keeps it; true if it was served.
    #[sql_name = "avatar.avatar_disable"]
    fn avatar_disable(resource: Text) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// Serves a disabled avatar again, with the same id; true if it was disabled.
    #[sql_name = "avatar.avatar_enable"]
    fn avatar_enable(resource: Text) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// Deletes `resource`'s image, cache and addresses for good.
    #[sql_name = "avatar.avatar_wipe"]
    fn avatar_wipe(resource: Text) -> diesel::sql_types::Bool;
}

define_sql_function! {
    /// Stores a copy fetched by the Libravatar fallback for the address
    /// with this SHA-256; NULL if no such address is set.
    #[sql_name = "avatar.avatar_set_fallback"]
    fn avatar_set_fallback(sha256: Text, image: Bytea) -> Nullable<Uuid>;
}

define_sql_function! {
    /// Removes the fallback's copy for an address; true if there was one.
    #[sql_name = "avatar.avatar_drop_fallback"]
    fn avatar_drop_fallback(sha256: Text) -> diesel::sql_types::Bool;
}
