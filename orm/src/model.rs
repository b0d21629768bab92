//! The mixin: everything a model gets from `#[derive(Avatar)]`.

use diesel::expression::BoxableExpression;
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::sql_types::Text;
use url::Url;
use uuid::Uuid;

use crate::error::Result;
use crate::functions::{
    avatar_delete, avatar_description, avatar_get, avatar_get_or_default, avatar_id, avatar_set,
    avatar_set_cropped, avatar_set_description, avatar_set_rating, avatar_sha1,
};
use crate::html::Img;
use crate::urls::AvatarUrls;
use crate::{Crop, Rating};

/// The resource of a row as a SQL expression over its table, for queries
/// that join avatars to many rows at once.
pub type ResourceSql<T> = Box<dyn BoxableExpression<T, Pg, SqlType = Text>>;

/// A diesel model with an avatar. Derive it: `#[derive(Avatar)]` reads the
/// table and primary key from `#[diesel(table_name = …, primary_key(…))]`,
/// or from `#[avatar(table = "…", key(…))]`, which wins.
pub trait Avatar {
    /// The diesel table the model is loaded from.
    type Table;

    /// The text naming this row in `avatar.avatar`: the table name, then
    /// each primary-key part, joined by commas (`users,42`). Inside a part,
    /// `%` and `,` are written `%25` and `%2C`, so every key has exactly one
    /// resource. Changing a model's table or key changes its resources, so
    /// avatars stored under the old ones would no longer be found.
    fn avatar_resource(&self) -> String;

    /// The same resource, computed by the database from the row's columns.
    fn avatar_resource_sql() -> ResourceSql<Self::Table>;

    /// Stores an upload (JPEG, PNG, WebP, GIF or BMP) as this row's avatar
    /// and returns its public id, which stays the same when replaced. A
    /// new image keeps the rating and drops the alt text, which described
    /// the old one.
    fn set_avatar(&self, conn: &mut PgConnection, image: &[u8]) -> Result<Uuid> {
        Ok(diesel::select(avatar_set(self.avatar_resource(), image)).get_result(conn)?)
    }

    /// The same with the square the user chose, in pixels of the upright
    /// image (as shown, after its EXIF orientation). A square that is not
    /// inside the image is refused ([`crate::Error::is_invalid_input`]),
    /// with the image's upright size in the message, and nothing is written.
    fn set_avatar_cropped(
        &self,
        conn: &mut PgConnection,
        image: &[u8],
        crop: Crop,
    ) -> Result<Uuid> {
        // No image is 2^31 pixels wide, so a larger value is as far outside
        // as the database needs to say so.
        let sql = |v: u32| Some(i32::try_from(v).unwrap_or(i32::MAX));
        let query = avatar_set_cropped(
            self.avatar_resource(),
            image,
            sql(crop.x),
            sql(crop.y),
            sql(crop.size),
        );
        Ok(diesel::select(query).get_result(conn)?)
    }

    /// Rates the avatar, for the Libravatar route's `r=`; true if there
    /// is one. Avatars are `g` until rated.
    fn set_avatar_rating(&self, conn: &mut PgConnection, rating: Rating) -> Result<bool> {
        let query = avatar_set_rating(self.avatar_resource(), rating.name());
        Ok(diesel::select(query).get_result(conn)?)
    }

    /// Sets the avatar's alt text, or clears it with `None`; true if there
    /// is an avatar. At most [`crate::contract::limits::MAX_DESCRIPTION_CHARS`].
    fn set_avatar_description(
        &self,
        conn: &mut PgConnection,
        description: Option<&str>,
    ) -> Result<bool> {
        // PostgreSQL's text cannot hold NUL, and would refuse it as an
        // encoding error, not as the caller's input.
        if description.is_some_and(|d| d.contains('\0')) {
            return Err(crate::Error::InvalidInput {
                message: "the description contains a NUL character".into(),
                hint: Some("Describe the picture in plain text.".into()),
            });
        }
        let query = avatar_set_description(self.avatar_resource(), description);
        Ok(diesel::select(query).get_result(conn)?)
    }

    /// The avatar as a JPEG exactly `avatar_size(size)` pixels square.
    fn avatar(&self, conn: &mut PgConnection, size: u32) -> Result<Option<Vec<u8>>> {
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        Ok(diesel::select(avatar_get(avatar_id(self.avatar_resource()), size)).get_result(conn)?)
    }

    /// The avatar, or in one query a generated placeholder of `kind` for
    /// `name`: `"initial"` draws its first letter on a colour from its
    /// hash; `"identicon"`, `"retro"` and `"mp"` are Libravatar's.
    fn avatar_or_default(
        &self,
        conn: &mut PgConnection,
        size: u32,
        kind: &str,
        name: &str,
    ) -> Result<Vec<u8>> {
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        let query = avatar_get_or_default(self.avatar_resource(), size, kind, Some(name));
        Ok(diesel::select(query).get_result(conn)?)
    }

    fn avatar_id(&self, conn: &mut PgConnection) -> Result<Option<Uuid>> {
        Ok(diesel::select(avatar_id(self.avatar_resource())).get_result(conn)?)
    }

    /// The public URL of the avatar at `size`, with the current version.
    fn avatar_url(
        &self,
        conn: &mut PgConnection,
        urls: &AvatarUrls,
        size: u32,
    ) -> Result<Option<Url>> {
        resource_url(conn, &self.avatar_resource(), urls, size)
    }

    /// A `srcset` at 1x, 2x and 3x of `css_size` ([`AvatarUrls::srcset`]).
    fn avatar_srcset(
        &self,
        conn: &mut PgConnection,
        urls: &AvatarUrls,
        css_size: u32,
    ) -> Result<Option<String>> {
        Ok(current(conn, &self.avatar_resource())?
            .map(|(id, sha1, _)| urls.srcset(id, &sha1, css_size)))
    }

    /// The `<img>` of the avatar at `css_size` CSS pixels, from one query:
    /// its alt text is the stored description, or `alt` without one.
    fn avatar_img(
        &self,
        conn: &mut PgConnection,
        urls: &AvatarUrls,
        css_size: u32,
        alt: &str,
    ) -> Result<Option<Img>> {
        Ok(
            current(conn, &self.avatar_resource())?.map(|(id, sha1, description)| {
                urls.img(id, &sha1, css_size, description.as_deref().unwrap_or(alt))
            }),
        )
    }

    /// Removes the avatar and its cached sizes; true if there was one.
    fn delete_avatar(&self, conn: &mut PgConnection) -> Result<bool> {
        Ok(diesel::select(avatar_delete(self.avatar_resource())).get_result(conn)?)
    }
}

/// The public URL of a resource's avatar at `size`, with the current
/// version, for callers that have the resource but no model (one query).
pub fn resource_url(
    conn: &mut PgConnection,
    resource: &str,
    urls: &AvatarUrls,
    size: u32,
) -> Result<Option<Url>> {
    let id = avatar_id(resource);
    let (id, sha1): (Option<Uuid>, Option<String>) =
        diesel::select((id, avatar_sha1(id))).get_result(conn)?;
    Ok(id.zip(sha1).map(|(id, sha1)| urls.url(id, &sha1, size)))
}

/// A served avatar's id, SHA-1 and alt text, in one statement.
fn current(
    conn: &mut PgConnection,
    resource: &str,
) -> Result<Option<(Uuid, String, Option<String>)>> {
    let id = avatar_id(resource);
    let (id, sha1, description): (Option<Uuid>, Option<String>, Option<String>) =
        diesel::select((id, avatar_sha1(id), avatar_description(id))).get_result(conn)?;
    Ok(id.zip(sha1).map(|(id, sha1)| (id, sha1, description)))
}

/// Support for the derive's generated code; not a stable API.
#[doc(hidden)]
pub mod __private {
    use diesel::expression::{BoxableExpression, Expression};
    use diesel::pg::Pg;
    use diesel::sql_types::{Array, Text};

    pub use super::ResourceSql;
    pub use crate::key::resource;
    pub use diesel;

    use crate::key::{AvatarKey, Part};

    /// A key column as text, checked to be of the SQL type of its field's
    /// [`AvatarKey`].
    pub fn part<K, QS, E>(column: E) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Text>>
    where
        K: AvatarKey,
        E: Expression<SqlType = K::SqlType> + Part<QS>,
    {
        K::column_text(column)
    }

    diesel::define_sql_function! {
        /// The extension's resource of a prefix and key parts: what
        /// [`resource`] computes in Rust, by the same Rust function.
        #[sql_name = "avatar.avatar_resource"]
        fn avatar_resource(prefix: Text, parts: Array<Text>) -> Text;
    }
}
