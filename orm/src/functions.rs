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
    /// The avatar as a JPEG of `avatar_size(size)` pixels square, or NULL.
    #[sql_name = "avatar.avatar_get"]
    fn avatar_get(id: Nullable<Uuid>, size: Integer) -> Nullable<Bytea>;
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
