//! The route that serves public avatar URLs:
//! `GET`/`HEAD /avatar/{db}/{id}?s={size}&v={version}`, as JPEG, or as
//! PNG or WebP when the `Accept` header names them.
//!
//! Mount it in an existing axum app with one line:
//!
//! ```ignore
//! let app = app.merge(diesel_avatar::http::router(databases, Options::default())?);
//! ```

mod byte_lru;
mod cache;
mod etag;
mod fallback;
mod libravatar;
mod server;
mod store;

pub use fallback::RemoteFallback;
pub use libravatar::Libravatar;
pub use server::{serve, Limits};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::urls::{self, RequestError};
use crate::Format;
use avatar_contract::size::quantise;
use cache::{Cache, Entry};
use store::{Fetched, Pool};
use uuid::Uuid;

/// One database the route serves avatars from.
#[derive(Clone)]
pub struct Database {
    /// Only ever used to derive the URL key; never logged or sent.
    pub name: String,
    /// A libpq connection string or URL. Its role needs EXECUTE on
    /// `avatar.avatar_rendition(uuid, integer, text)` and `avatar.avatar_sha1(uuid)`.
    pub url: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database { .. }")
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// `Cache-Control: max-age` when the URL carries no current version.
    pub max_age: Duration,
    /// Connections per database.
    pub pool_size: u32,
    /// How long a request waits for a connection before answering 503.
    pub connect_timeout: Duration,
    /// Image bytes kept in memory per database, so that hits and 304s need
    /// no query. Entries are evicted by pg_avatar's `avatar_changed`
    /// notifications, within about 50 ms of a commit. 0 turns it off.
    pub cache_bytes: usize,
    /// Address digests whose avatar the Libravatar route remembers per
    /// database, evicted by `avatar_address_changed` notifications. An LRU
    /// of this many entries; 0 turns it off.
    pub metadata_entries: usize,
    /// Also serve `GET /avatar/{md5 or sha256}` by the Libravatar API.
    pub libravatar: Option<Libravatar>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_age: Duration::from_secs(7 * 24 * 3600),
            pool_size: 8,
            connect_timeout: Duration::from_secs(2),
            cache_bytes: 64 << 20,
            metadata_entries: 200,
            libravatar: None,
        }
    }
}

/// A version in the URL that matches the image makes the URL immutable.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Service {
    /// By database key, the URL segment; the names are not kept.
    backends: HashMap<String, Backend>,
    cache_control: HeaderValue,
}

struct Backend {
    pool: Pool,
    cache: Arc<Cache>,
}

/// The avatar route for `databases`. Pools connect lazily, so the server
/// starts (and answers 503) while a database is down.
pub fn router(databases: Vec<Database>, options: Options) -> Result<Router, urls::UrlError> {
    let mut backends = HashMap::new();
    let mut libravatar_key = None;
    for db in databases {
        if db.secret.len() < urls::MIN_SECRET_LEN {
            return Err(urls::UrlError::ShortSecret);
        }
        let cache = Arc::new(Cache::new(options.cache_bytes, options.metadata_entries));
        cache::spawn_listener(db.url.clone(), cache.clone());
        let key = urls::database_key(&db.name, &db.secret);
        if options
            .libravatar
            .as_ref()
            .is_some_and(|l| l.database == db.name)
        {
            libravatar_key = Some(key.clone());
        }
        backends.insert(
            key,
            Backend {
                pool: store::pool(&db.url, &options),
                cache,
            },
        );
    }
    let cache_control =
        HeaderValue::try_from(format!("public, max-age={}", options.max_age.as_secs()))
            .expect("digits are a valid header value");
    let service = Arc::new(Service {
        backends,
        cache_control,
    });
    let mut router = Router::new()
        .route("/avatar/{db}/{id}", get(handle))
        .with_state(service.clone());
    if let Some(options) = options.libravatar {
        let key = libravatar_key.ok_or(urls::UrlError::UnknownDatabase)?;
        let provider = Arc::new(libravatar::Provider::new(service, key, options));
        router = router.merge(
            Router::new()
                .route("/avatar/{digest}", get(libravatar::handle))
                .with_state(provider),
        );
    }
    Ok(router)
}

async fn handle(
    State(service): State<Arc<Service>>,
    Path((db, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let parsed = urls::parse_size(query.get("s").map(String::as_str)).and_then(|size| {
        Ok((
            size,
            urls::parse_format(query.get("f").map(String::as_str))?,
        ))
    });
    let (size, named) = match parsed {
        Ok(parsed) => parsed,
        Err(RequestError::BadRequest(why)) => return plain(StatusCode::BAD_REQUEST, why),
        Err(RequestError::NotFound) => return not_found(),
    };
    let Ok(path) = urls::parse_path(&db, &id) else {
        return not_found();
    };
    let Some(backend) = service.backends.get(&path.database_key) else {
        return not_found();
    };
    let request = Request {
        size,
        format: named,
        version: query.get("v").map(String::as_str),
    };
    serve_avatar(
        &service,
        backend,
        &path.database_key,
        path.id,
        request,
        &headers,
    )
    .await
    .unwrap_or_else(not_found)
}

/// What a request asks of an avatar.
struct Request<'a> {
    /// As asked; rounded to a served size before it is a key or a tag.
    size: u32,
    /// Named by the URL, or `None` for the `Accept` header to decide.
    format: Option<Format>,
    /// The version the URL was made for, if any.
    version: Option<&'a str>,
}

/// The avatar `id` from memory or the database, or `None` if there is no
/// such avatar (being served).
async fn serve_avatar(
    service: &Service,
    backend: &Backend,
    database_key: &str,
    id: Uuid,
    request: Request<'_>,
    headers: &HeaderMap,
) -> Option<Response> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let rendition = Rendition {
        // Every size the extension rounds to one image is one key and one
        // tag, so no spelling of a size is a second copy in any cache.
        size: quantise(i64::from(request.size)).unwrap_or(request.size),
        format: request.format.unwrap_or_else(|| {
            Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
        }),
        varies: request.format.is_none(),
    };
    let (size, format) = (rendition.size, rendition.format);

    // Memory answers only for the version it holds: a URL made for a newer
    // image is looked up, or the route (behind a lagging notification, in
    // front of a lagging replica) would pass off the old image as the new.
    let hit = backend.cache.get(id, size, format).filter(|hit| {
        request
            .version
            .is_none_or(|v| v == urls::version(&hit.sha1))
    });
    if let Some(hit) = hit {
        let fresh = if_none_match
            .as_deref()
            .is_some_and(|tags| etag::matches(tags, &hit.sha1, size, format));
        let (status, body) = if fresh {
            (StatusCode::NOT_MODIFIED, None)
        } else {
            (StatusCode::OK, Some(hit.bytes))
        };
        return Some(answer(
            service,
            request.version,
            rendition,
            status,
            &hit.sha1,
            body,
        ));
    }

    let epoch = backend.cache.epoch();
    let pool = backend.pool.clone();
    let fetched = tokio::task::spawn_blocking(move || {
        store::fetch(&pool, id, size, format, if_none_match.as_deref())
    })
    .await;
    let (status, sha1, body) = match fetched {
        Ok(Ok(Fetched::Missing)) => return None,
        Ok(Ok(Fetched::NotModified { sha1 })) => (StatusCode::NOT_MODIFIED, sha1, None),
        Ok(Ok(Fetched::Image { sha1, bytes })) => {
            let entry = Entry {
                sha1: sha1.as_str().into(),
                bytes: Bytes::from(bytes),
            };
            backend.cache.put(epoch, id, size, format, entry.clone());
            (StatusCode::OK, sha1, Some(entry.bytes))
        }
        Ok(Err(e)) => return Some(failed(database_key, e)),
        Err(join) => {
            tracing::error!(error = %join, "avatar worker panicked");
            return Some(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ));
        }
    };
    Some(answer(
        service,
        request.version,
        rendition,
        status,
        &sha1,
        body,
    ))
}

/// What one answer carries: a size, in a format.
#[derive(Clone, Copy)]
struct Rendition {
    size: u32,
    format: Format,
    /// Whether the format came from `Accept` rather than the URL.
    varies: bool,
}

/// 503 while the database is unreachable, 500 for anything else.
fn failed(database_key: &str, error: store::FetchError) -> Response {
    match error {
        store::FetchError::Unavailable => {
            tracing::warn!(database = %database_key, "database unavailable");
            let mut response = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable, try again shortly".into(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        store::FetchError::Failed(e) => {
            tracing::error!(database = %database_key, error = %e, "avatar query failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}

fn answer(
    service: &Service,
    version: Option<&str>,
    rendition: Rendition,
    status: StatusCode,
    sha1: &str,
    body: Option<Bytes>,
) -> Response {
    let mut response = match body {
        Some(bytes) => (status, bytes).into_response(),
        None => status.into_response(),
    };
    let h = response.headers_mut();
    common_headers(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rendition.format.mime_type()),
    );
    // Shared caches must key on Accept too, or a WebP answer could reach a
    // client that asked for PNG. A URL that names its format does not vary.
    if rendition.varies {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    h.insert(
        header::ETAG,
        etag::for_image(sha1, rendition.size, rendition.format),
    );
    h.insert(
        header::CACHE_CONTROL,
        match version {
            Some(v) if v == urls::version(sha1) => HeaderValue::from_static(IMMUTABLE),
            // Made for another image: the database has not got it yet (or no
            // longer has it), so no cache may keep this answer for that URL.
            Some(_) => HeaderValue::from_static("public, no-cache"),
            None => service.cache_control.clone(),
        },
    );
    response
}

fn common_headers(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut response = (status, text + "\n").into_response();
    common_headers(response.headers_mut());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The same answer for an unknown database, an unknown id and a malformed
/// path, so responses reveal nothing about which databases or ids exist.
fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "no such avatar".into())
}
