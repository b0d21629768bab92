//! The application's data: a `users` table whose rows own avatars through
//! `#[derive(Avatar)]`, and the queries the pages need. Everything here
//! blocks; handlers run it on blocking threads (see `app::App::db`).

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};
use diesel_avatar::functions::{avatar_id, avatar_set_email, avatar_sha1};
use diesel_avatar::html::Img;
use diesel_avatar::{Avatar, AvatarUrls, Crop, Format, Rating, Uuid};
use url::Url;

use crate::error::{AppError, Problem};

pub mod schema {
    diesel::table! {
        users (id) {
            id -> Int4,
            name -> Text,
        }
    }
}
use schema::users;

#[derive(Queryable, Selectable, Identifiable, Avatar, Debug, Clone)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i32,
    pub name: String,
}

/// The CSS sizes the user page shows an avatar at, each with a `srcset`.
pub const SHOWN_SIZES: [u32; 3] = [32, 64, 128];
/// The size of the public URL the page prints.
pub const URL_SIZE: u32 = 128;
/// The avatar beside each user on the front page.
pub const LIST_SIZE: u32 = 32;

/// The pg_avatar this application is written against: the one this tree
/// builds, with the crop overload of `avatar_set`, `avatar_set_rating`,
/// `avatar_set_description`, `avatar_description`, and `avatar_info`'s
/// `rating` and `description`.
/// The demo ships with the extension it demonstrates, so it needs the
/// version this tree builds: the workspace's.
pub const EXTENSION_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Refuses any installed version but [`EXTENSION_VERSION`] (`None`: not
/// installed), saying what to run.
fn check_version(installed: Option<&str>) -> Result<(), String> {
    match installed {
        None => Err(format!(
            "pg_avatar is not installed in this database: run CREATE EXTENSION pg_avatar \
             (this application needs version {EXTENSION_VERSION})"
        )),
        Some(EXTENSION_VERSION) => Ok(()),
        Some(other) => Err(format!(
            "this database has pg_avatar {other}, and this application needs {EXTENSION_VERSION}: \
             run ALTER EXTENSION pg_avatar UPDATE (with pg_avatar {EXTENSION_VERSION} installed on the server)"
        )),
    }
}

/// At start-up: checks the installed pg_avatar is [`EXTENSION_VERSION`],
/// creates `users` if it is missing and attaches it (so deleting a user
/// wipes its avatar; attaching again is harmless), and returns the
/// database's name.
pub fn prepare(conn: &mut PgConnection) -> Result<String, String> {
    #[derive(QueryableByName)]
    struct Installed {
        #[diesel(sql_type = Nullable<Text>)]
        version: Option<String>,
        #[diesel(sql_type = Text)]
        database: String,
    }
    let installed: Installed = diesel::sql_query(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'pg_avatar') AS version,
                current_database() AS database",
    )
    .get_result(conn)
    .map_err(|e| format!("cannot query the database: {e}"))?;
    check_version(installed.version.as_deref())?;
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, name text NOT NULL);
         SELECT avatar.attach('users', 'id');",
    )
    .map_err(|e| format!("cannot create and attach the users table: {e}"))?;
    Ok(installed.database)
}

pub fn find_user(conn: &mut PgConnection, id: i32) -> Result<User, AppError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)?)
}

pub fn create_user(conn: &mut PgConnection, name: &str) -> Result<User, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::Invalid(Problem::new("A user needs a name.")));
    }
    Ok(diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .returning(User::as_returning())
        .get_result(conn)?)
}

/// Deletes the row; the trigger `attach` installed wipes its avatar, its
/// cache and its addresses in the same transaction.
pub fn delete_user(conn: &mut PgConnection, id: i32) -> Result<bool, AppError> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? > 0)
}

/// A user on the front page, with its avatar if it has one.
pub struct Listed {
    pub user: User,
    pub img: Option<Img>,
}

/// Every user with the id and version of its avatar, in one query: the
/// resource is computed by the database (`avatar_resource_sql`), so the
/// listing needs no query per row.
pub fn list_users(conn: &mut PgConnection, urls: &AvatarUrls) -> Result<Vec<Listed>, AppError> {
    let r = User::avatar_resource_sql;
    let rows: Vec<(i32, String, Option<Uuid>, Option<String>)> = users::table
        .select((
            users::id,
            users::name,
            avatar_id(r()),
            avatar_sha1(avatar_id(r())),
        ))
        .order(users::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, avatar, sha1)| {
            let img = avatar
                .zip(sha1)
                .map(|(avatar, sha1)| urls.img(avatar, &sha1, LIST_SIZE, &name));
            Listed {
                user: User { id, name },
                img,
            }
        })
        .collect())
}

/// What the upload form sends, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Upload {
    /// None when no file was chosen: then only the details change.
    pub picture: Option<Vec<u8>>,
    pub crop: Option<Crop>,
    pub rating: Option<Rating>,
    /// Some("") clears it.
    pub description: Option<String>,
}

/// What saving did, for the notice on the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The picture as cropped (or the centre square, without a crop).
    Picture,
    /// No new picture; rating and description only.
    Details,
}

/// Stores an upload through the mixin, in one transaction: the picture
/// (with the chosen crop), its rating and its description. Bad input is
/// `Error::InvalidInput` with pg_avatar's message, and writes nothing.
pub fn save_avatar(
    conn: &mut PgConnection,
    user: &User,
    upload: &Upload,
) -> Result<Saved, AppError> {
    conn.transaction::<_, AppError, _>(|conn| {
        let saved = match (&upload.picture, upload.crop) {
            (Some(bytes), Some(crop)) => {
                user.set_avatar_cropped(conn, bytes, crop)?;
                Saved::Picture
            }
            (Some(bytes), None) => {
                user.set_avatar(conn, bytes)?;
                Saved::Picture
            }
            (None, _) => {
                if user.avatar_id(conn)?.is_none() {
                    return Err(AppError::Invalid(Problem::new(
                        "Choose a picture first: drop one on the page, or pick a file.",
                    )));
                }
                Saved::Details
            }
        };
        if let Some(rating) = upload.rating {
            user.set_avatar_rating(conn, rating)?;
        }
        if let Some(description) = &upload.description {
            let description = description.trim();
            user.set_avatar_description(conn, Some(description).filter(|d| !d.is_empty()))?;
        }
        Ok(saved)
    })
}

/// Lets the Libravatar route find the user by `email`, and returns the
/// MD5 digest its URLs use, computed as pg_avatar stores it (trimmed and
/// lower-cased by the database, so both agree on every address).
pub fn set_email(conn: &mut PgConnection, user: &User, email: &str) -> Result<String, AppError> {
    #[derive(QueryableByName)]
    struct Digest {
        #[diesel(sql_type = Text)]
        md5: String,
    }
    conn.transaction::<_, AppError, _>(|conn| {
        diesel::select(avatar_set_email(user.avatar_resource(), email)).execute(conn)?;
        let digest: Digest = diesel::sql_query("SELECT md5(lower(btrim($1))) AS md5")
            .bind::<Text, _>(email)
            .get_result(conn)?;
        Ok(digest.md5)
    })
}

/// `avatar.avatar_info(id)`: the metadata the page shows.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct Info {
    #[diesel(sql_type = Text)]
    pub resource: String,
    #[diesel(sql_type = Text)]
    pub sha1: String,
    #[diesel(sql_type = Integer)]
    pub bytes: i32,
    #[diesel(sql_type = Integer)]
    pub width: i32,
    #[diesel(sql_type = Integer)]
    pub height: i32,
    #[diesel(sql_type = Text)]
    pub mime_type: String,
    #[diesel(sql_type = Text)]
    pub created_at: String,
    #[diesel(sql_type = Text)]
    pub updated_at: String,
    #[diesel(sql_type = Integer)]
    pub cached_sizes: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub rating: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
}

/// The query for [`Info`].
const INFO_SQL: &str = "SELECT i.resource, i.sha1, i.bytes, i.width, i.height, i.mime_type,
        to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"') AS created_at,
        to_char(i.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"') AS updated_at,
        i.cached_sizes, i.rating, i.description
   FROM avatar.avatar_info($1) i";

/// Everything the page shows of a user's avatar.
pub struct AvatarView {
    pub id: Uuid,
    /// One `<img>` per [`SHOWN_SIZES`], each with its `srcset`.
    pub imgs: Vec<Img>,
    pub url: Url,
    /// The same URL naming each format.
    pub formats: Vec<(Format, Url)>,
    pub info: Info,
}

pub fn avatar_view(
    conn: &mut PgConnection,
    user: &User,
    urls: &AvatarUrls,
) -> Result<Option<AvatarView>, AppError> {
    let alt = format!("{}'s avatar", user.name);
    // The avatar's id and version, read once for the URLs built here.
    let resource = user.avatar_resource();
    let (id, sha1): (Option<Uuid>, Option<String>) =
        diesel::select((avatar_id(&resource), avatar_sha1(avatar_id(&resource))))
            .get_result(conn)?;
    let (Some(id), Some(sha1)) = (id, sha1) else {
        return Ok(None);
    };
    let mut imgs = Vec::with_capacity(SHOWN_SIZES.len());
    for size in SHOWN_SIZES {
        // The mixin's one-query <img>, whose alt is the stored description.
        imgs.extend(user.avatar_img(conn, urls, size, &alt)?);
    }
    let Some(url) = user.avatar_url(conn, urls, URL_SIZE)? else {
        return Ok(None);
    };
    let formats = [Format::Jpeg, Format::Png, Format::Webp]
        .into_iter()
        .map(|format| (format, urls.url_as(id, &sha1, URL_SIZE, format)))
        .collect();
    let info = diesel::sql_query(INFO_SQL)
        .bind::<diesel::sql_types::Uuid, _>(id)
        .get_result::<Info>(conn)
        .optional()?;
    Ok(info.map(|info| AvatarView {
        id,
        imgs,
        url,
        formats,
        info,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_named_as_attach_names_its_rows() {
        let ada = User {
            id: 42,
            name: "Ada".into(),
        };
        assert_eq!(ada.avatar_resource(), "users,42");
    }

    #[test]
    fn only_the_version_this_tree_builds_is_taken() {
        assert_eq!(check_version(Some(EXTENSION_VERSION)), Ok(()));
        let old = check_version(Some("0.2.0")).unwrap_err();
        assert!(old.contains("pg_avatar 0.2.0"), "{old}");
        assert!(old.contains("ALTER EXTENSION pg_avatar UPDATE"), "{old}");
        assert!(check_version(Some("0.3.1")).is_err());
        let missing = check_version(None).unwrap_err();
        assert!(missing.contains("CREATE EXTENSION pg_avatar"), "{missing}");
    }
}
