//! The route's database work, run on blocking threads. Each read is
//! retried once on a fresh connection if the pooled one died (as after a
//! server restart), by [`retried`].

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool as R2d2Pool};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use crate::{etag, Options};
use avatar_contract::{Format, Rating};
use diesel_avatar::functions::{
    avatar_by_digest_rated, avatar_default_exact, avatar_drop_fallback, avatar_set_fallback,
    avatar_sha1,
};

pub type Pool = R2d2Pool<ConnectionManager<PgConnection>>;

pub fn pool(url: &str, options: &Options) -> Pool {
    R2d2Pool::builder()
        .max_size(options.pool_size)
        .min_idle(Some(0))
        .connection_timeout(options.connect_timeout)
        // libpq's messages can name the database; failures surface as 503s instead.
        .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
        .build_unchecked(ConnectionManager::new(url))
}

pub enum Fetched {
    Missing,
    NotModified { sha1: String },
    Image { sha1: String, bytes: Vec<u8> },
}

pub enum FetchError {
    /// No connection could be had, or it broke: answer 503.
    Unavailable,
    Failed(DieselError),
}

/// `query` on a pooled connection, and once more on another if the first
/// was found dead.
fn retried<T>(
    pool: &Pool,
    query: impl Fn(&mut PgConnection) -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let once = || {
        let mut conn = pool.get().map_err(|_| FetchError::Unavailable)?;
        query(&mut conn)
    };
    match once() {
        Err(FetchError::Unavailable) => once(),
        other => other,
    }
}

/// What a request for one rendition needs of the database.
pub struct Wanted<'a> {
    pub id: Uuid,
    pub size: u32,
    /// `size` as it is, not rounded to a stored size.
    pub exact: bool,
    pub format: Format,
    pub if_none_match: Option<&'a str>,
}

/// The rendition, or only that the client's copy is current.
pub fn fetch(pool: &Pool, wanted: &Wanted<'_>) -> Result<Fetched, FetchError> {
    retried(pool, |conn| fetch_once(conn, wanted))
}

fn fetch_once(conn: &mut PgConnection, wanted: &Wanted<'_>) -> Result<Fetched, FetchError> {
    let Wanted {
        id,
        size,
        exact,
        format,
        if_none_match,
    } = *wanted;
    let size_sql = size as i32;
    if let Some(tags) = if_none_match {
        // A revalidation costs one index lookup and no image bytes.
        let sha1: Option<String> = diesel::select(avatar_sha1(id))
            .get_result(conn)
            .map_err(classify)?;
        match sha1 {
            None => return Ok(Fetched::Missing),
            Some(sha1) if etag::matches(tags, &sha1, size, format) => {
                return Ok(Fetched::NotModified { sha1 })
            }
            Some(_) => {}
        }
    }
    // The bytes and the digest of the master they were made from, from one
    // call: read apart, a new image set in between would pair them wrongly.
    let query = if exact {
        "SELECT sha1, image FROM avatar.avatar_rendition_exact($1, $2, $3)"
    } else {
        "SELECT sha1, image FROM avatar.avatar_rendition($1, $2, $3)"
    };
    let rendition: Option<RenditionRow> = diesel::sql_query(query)
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Integer, _>(size_sql)
        .bind::<diesel::sql_types::Text, _>(format.name())
        .get_result(conn)
        .optional()
        .map_err(classify)?;
    Ok(match rendition {
        Some(RenditionRow { sha1, image }) => Fetched::Image { sha1, bytes: image },
        None => Fetched::Missing,
    })
}

#[derive(QueryableByName)]
struct RenditionRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sha1: String,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    image: Vec<u8>,
}

/// The avatar an address digest points to.
/// The avatar `digest` leads to for a request that accepts `rating`.
pub fn by_digest(pool: &Pool, digest: &str, rating: Rating) -> Result<Option<Uuid>, FetchError> {
    retried(pool, |conn| {
        diesel::select(avatar_by_digest_rated(digest, rating.name()))
            .get_result(conn)
            .map_err(classify)
    })
}

/// A generated default from the extension, so SQL users and the route
/// draw the same image.
pub fn generated(pool: &Pool, kind: &str, seed: &str, size: u32) -> Result<Vec<u8>, FetchError> {
    retried(pool, |conn| {
        diesel::select(avatar_default_exact(kind, seed, size as i32))
            .get_result(conn)
            .map_err(classify)
    })
}

/// An address the Libravatar fallback should look up now.
#[derive(Debug, Clone, QueryableByName)]
pub struct Due {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub sha256: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub domain: String,
    /// Whether a copy exists (which is then older than the refresh age).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub copied: bool,
}

pub fn fallback_due(
    pool: &Pool,
    digest: &str,
    refresh: std::time::Duration,
) -> Result<Option<Due>, FetchError> {
    retried(pool, |conn| {
        diesel::sql_query(
            "SELECT sha256, domain, copied_at IS NOT NULL AS copied
               FROM avatar.avatar_fallback_due($1, make_interval(secs => $2))",
        )
        .bind::<diesel::sql_types::Text, _>(digest)
        .bind::<diesel::sql_types::Double, _>(refresh.as_secs_f64())
        .get_result(conn)
        .optional()
        .map_err(classify)
    })
}

/// Errors as text: the fallback only logs them.
pub fn set_fallback(pool: &Pool, sha256: &str, image: &[u8]) -> Result<(), String> {
    let mut conn = pool.get().map_err(|_| "database unavailable".to_string())?;
    diesel::select(avatar_set_fallback(sha256, image))
        .get_result::<Option<Uuid>>(&mut conn)
        .map(drop)
        .map_err(|e| e.to_string())
}

pub fn drop_fallback(pool: &Pool, sha256: &str) -> Result<(), String> {
    let mut conn = pool.get().map_err(|_| "database unavailable".to_string())?;
    diesel::select(avatar_drop_fallback(sha256))
        .get_result::<bool>(&mut conn)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn classify(e: DieselError) -> FetchError {
    match &e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => FetchError::Unavailable,
        // The connection died under us: libpq reports these as plain errors.
        DieselError::DatabaseError(_, info)
            if info.message().contains("server closed the connection")
                || info.message().contains("terminating connection") =>
        {
            FetchError::Unavailable
        }
        _ => FetchError::Failed(e),
    }
}
