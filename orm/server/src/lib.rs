//! The HTTP side of pg_avatar. The route that serves public avatar URLs:
//! `GET`/`HEAD /avatar/{db}/{id}?s={size}&v={version}`, as JPEG, or as
//! PNG or WebP when the URL or the `Accept` header names them; optionally
//! the Libravatar API (`GET /avatar/{digest}`) and its fallback to other
//! providers; and [`serve`], an accept loop for the open internet.
//!
//! Mount it in an existing axum app:
//!
//! ```ignore
//! let (avatars, listeners) = pg_avatar_server::router(databases, Options::default())?;
//! let app = app.merge(avatars);
//! // ... serve app; then, to stop the cache listeners:
//! listeners.shutdown().await;
//! ```

mod byte_lru;
mod cache;
mod error;
mod etag;
mod fallback;
pub mod federation;
pub mod libravatar;
mod listener;
pub mod negotiate;
mod server;
mod store;

pub use error::HttpError;
pub use fallback::RemoteFallback;
pub use libravatar::Libravatar;
pub use listener::Listeners;
pub use server::{serve, Limits};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use avatar_contract::size::quantise;
use avatar_contract::Format;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use diesel_avatar::urls;
use uuid::Uuid;

use cache::{Cache, Entry};
use error::{blocking, common_headers};
use store::{Fetched, Pool, Wanted};

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
    backends: HashMap<String, Arc<Backend>>,
    cache_control: HeaderValue,
}

struct Backend {
    /// Its URL segment: what logs name it by.
    key: String,
    pool: Pool,
    cache: Arc<Cache>,
}

/// The avatar route for `databases`, and the listeners that keep its
/// memory cache honest, which stop when the handle is shut down or
/// dropped. Pools connect lazily, so the server starts (and answers 503)
/// while a database is down.
pub fn router(
    databases: Vec<Database>,
    options: Options,
) -> Result<(Router, Listeners), urls::UrlError> {
    let mut backends = HashMap::new();
    let mut libravatar_key = None;
    let mut listeners = Listeners::default();
    for db in &databases {
        if db.secret.len() < urls::MIN_SECRET_LEN {
            return Err(urls::UrlError::ShortSecret);
        }
    }
    for db in databases {
        let cache = Arc::new(Cache::new(options.cache_bytes, options.metadata_entries));
        listeners.start(db.url.clone(), cache.clone());
        let key = urls::database_key(&db.name, &db.secret);
        if options
            .libravatar
            .as_ref()
            .is_some_and(|l| l.database == db.name)
        {
            libravatar_key = Some(key.clone());
        }
        backends.insert(
            key.clone(),
            Arc::new(Backend {
                key,
                pool: store::pool(&db.url, &options),
                cache,
            }),
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
        .route(
            "/avatar/{db}/{id}",
            get(handle).fallback(|| async { HttpError::MethodNotAllowed }),
        )
        .with_state(service.clone());
    if let Some(options) = options.libravatar {
        let key = libravatar_key.ok_or(urls::UrlError::UnknownDatabase)?;
        let backend = service.backends[&key].clone();
        let provider = Arc::new(libravatar::Provider::new(service, backend, options));
        router = router.merge(
            Router::new()
                .route(
                    "/avatar/{digest}",
                    get(libravatar::handle).fallback(|| async { HttpError::MethodNotAllowed }),
                )
                .with_state(provider),
        );
    }
    Ok((router, listeners))
}

/// A path that does not decode (not UTF-8, say) names no avatar, and is
/// answered as any unknown one is.
type AvatarPath = Result<Path<(String, String)>, PathRejection>;
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

async fn handle(
    State(service): State<Arc<Service>>,
    path: AvatarPath,
    query: Params,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Path((db, id)) = path.map_err(|_| HttpError::NotFound)?;
    let Query(query) = query.map_err(|_| HttpError::BadRequest("malformed query".into()))?;
    let size = urls::parse_size(query.get("s").map(String::as_str))?;
    let format = urls::parse_format(query.get("f").map(String::as_str))?;
    let path = urls::parse_path(&db, &id)?;
    let backend = service
        .backends
        .get(&path.database_key)
        .ok_or(HttpError::NotFound)?;
    let request = Request {
        size,
        exact: false,
        format,
        version: query.get("v").cloned(),
    };
    service
        .serve_avatar(backend, path.id, &request, &headers)
        .await?
        .ok_or(HttpError::NotFound)
}

/// What a request asks of an avatar.
struct Request {
    /// As asked; rounded to a served size before it is a key or a tag,
    /// unless `exact`.
    size: u32,
    /// Exactly `size` pixels, as Libravatar clients rely on: made from the
    /// rounded size's rendition, not stored.
    exact: bool,
    /// Named by the URL, or `None` for the `Accept` header to decide.
    format: Option<Format>,
    /// The version the URL was made for, if any.
    version: Option<String>,
}

/// What one answer carries: a size, in a format.
#[derive(Clone, Copy)]
struct Rendition {
    size: u32,
    format: Format,
    /// Whether the format came from `Accept` rather than the URL.
    varies: bool,
}

/// An image answer, before its headers.
struct Found {
    status: StatusCode,
    sha1: String,
    body: Option<Bytes>,
}

impl Service {
    /// The avatar `id` from memory or the database, or `None` if there is
    /// no such avatar (being served).
    async fn serve_avatar(
        &self,
        backend: &Backend,
        id: Uuid,
        request: &Request,
        headers: &HeaderMap,
    ) -> Result<Option<Response>, HttpError> {
        let if_none_match = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let rendition = Rendition {
            // Every size the extension rounds to one image is one key and
            // one tag, so no spelling of a size is a second copy in any cache.
            // An exact size is an image of its own, under its own key and tag.
            size: if request.exact {
                request.size
            } else {
                quantise(i64::from(request.size)).unwrap_or(request.size)
            },
            format: request.format.unwrap_or_else(|| {
                negotiate::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
            }),
            varies: request.format.is_none(),
        };
        let (size, format) = (rendition.size, rendition.format);

        // Memory answers only for the version it holds: a URL made for a
        // newer image is looked up, or the route (behind a lagging
        // notification, in front of a lagging replica) would pass off the
        // old image as the new.
        let hit = backend.cache.get(id, size, format).filter(|hit| {
            request
                .version
                .as_deref()
                .is_none_or(|v| v == urls::version(&hit.sha1))
        });
        if let Some(hit) = hit {
            let fresh = if_none_match
                .as_deref()
                .is_some_and(|tags| etag::matches(tags, &hit.sha1, size, format));
            let found = Found {
                status: if fresh {
                    StatusCode::NOT_MODIFIED
                } else {
                    StatusCode::OK
                },
                sha1: hit.sha1.to_string(),
                body: (!fresh).then_some(hit.bytes),
            };
            return Ok(Some(self.answer(request, rendition, found)));
        }

        let epoch = backend.cache.epoch();
        let pool = backend.pool.clone();
        let request_exact = request.exact;
        let fetched = blocking(move || {
            let wanted = Wanted {
                id,
                size,
                exact: request_exact,
                format,
                if_none_match: if_none_match.as_deref(),
            };
            store::fetch(&pool, &wanted)
        })
        .await?
        .map_err(|e| HttpError::fetch_failed(&backend.key, e))?;
        let found = match fetched {
            Fetched::Missing => return Ok(None),
            Fetched::NotModified { sha1 } => Found {
                status: StatusCode::NOT_MODIFIED,
                sha1,
                body: None,
            },
            Fetched::Image { sha1, bytes } => {
                let entry = Entry {
                    sha1: sha1.as_str().into(),
                    bytes: Bytes::from(bytes),
                };
                backend.cache.put(epoch, id, size, format, entry.clone());
                Found {
                    status: StatusCode::OK,
                    sha1,
                    body: Some(entry.bytes),
                }
            }
        };
        Ok(Some(self.answer(request, rendition, found)))
    }

    fn answer(&self, request: &Request, rendition: Rendition, found: Found) -> Response {
        let mut response = match found.body {
            Some(bytes) => (found.status, bytes).into_response(),
            None => found.status.into_response(),
        };
        let h = response.headers_mut();
        common_headers(h);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(rendition.format.mime_type()),
        );
        // Shared caches must key on Accept too, or a WebP answer could
        // reach a client that asked for PNG. A URL that names its format
        // does not vary.
        if rendition.varies {
            h.insert(header::VARY, HeaderValue::from_static("Accept"));
        }
        h.insert(
            header::ETAG,
            etag::for_image(&found.sha1, rendition.size, rendition.format),
        );
        h.insert(
            header::CACHE_CONTROL,
            match request.version.as_deref() {
                Some(v) if v == urls::version(&found.sha1) => HeaderValue::from_static(IMMUTABLE),
                // Made for another image: the database has not got it yet
                // (or no longer has it), so no cache may keep this answer
                // for that URL.
                Some(_) => HeaderValue::from_static("public, no-cache"),
                None => self.cache_control.clone(),
            },
        );
        response
    }
}
