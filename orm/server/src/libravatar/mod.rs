//! `GET /avatar/{digest}`: the Libravatar API over one database's avatars,
//! so a deployment can be a federated Libravatar provider. The protocol's
//! rules are in [`rules`]; this is their HTTP glue.

pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use avatar_contract::Rating;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::byte_lru::ByteLru;
use crate::error::{blocking, common_headers, HttpError};
use crate::fallback::{Lookups, RemoteFallback};
use crate::{etag, store, Backend, Request, Service};
use rules::Fallback;

/// Turns the Libravatar route on (it is off unless configured).
#[derive(Debug, Clone)]
pub struct Libravatar {
    /// Which configured database's avatars it serves, by name.
    pub database: String,
    /// Larger `s` values are clamped to this.
    pub max_size: u32,
    /// Hosts a `d=<url>` default may redirect to; any other URL is ignored.
    pub allowed_default_hosts: Vec<String>,
    /// Fetch avatars for set addresses that have none from an external
    /// provider. Off (`None`) by default: see [`RemoteFallback`].
    pub fallback: Option<RemoteFallback>,
}

impl Default for Libravatar {
    fn default() -> Self {
        Libravatar {
            database: String::new(),
            max_size: 512,
            allowed_default_hosts: Vec::new(),
            fallback: None,
        }
    }
}

/// Generated defaults never change for the same (kind, seed, size), so
/// they are kept without any invalidation, up to this many bytes: seeded
/// kinds are one per digest, and any client can make up digests.
const GENERATED_BYTES: usize = 32 << 20;

pub(crate) struct Provider {
    service: Arc<Service>,
    backend: Arc<Backend>,
    options: Libravatar,
    generated: Mutex<ByteLru<(&'static str, String, u32), Bytes>>,
    fallback: Option<Lookups>,
}

impl Provider {
    pub fn new(service: Arc<Service>, backend: Arc<Backend>, options: Libravatar) -> Provider {
        let fallback = options.fallback.clone().map(Lookups::new);
        Provider {
            fallback,
            service,
            backend,
            options,
            generated: Mutex::new(ByteLru::new(GENERATED_BYTES)),
        }
    }
}

pub(crate) async fn handle(
    State(state): State<Arc<Provider>>,
    segment: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    // The protocol is lenient: what does not decode is simply not a digest
    // or a parameter.
    let segment = segment.map(|Path(s)| s).unwrap_or_default();
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let param = |short: &str, long: &str| query.get(short).or(query.get(long)).map(String::as_str);
    let size = rules::size(param("s", "size"), state.options.max_size);
    let rating = rules::rating(param("r", "rating"));
    let (digest, format) = rules::digest_and_format(&segment).unzip();
    let format = format.flatten();

    if let (Some(digest), false) = (&digest, rules::forced(param("f", "forcedefault"))) {
        if let Some(id) = avatar_for(&state, digest, rating).await? {
            let request = Request {
                size,
                exact: true,
                format,
                version: None,
            };
            let served = state
                .service
                .serve_avatar(&state.backend, id, &request, &headers)
                .await?;
            if let Some(response) = served {
                return Ok(response);
            }
        }
    }

    let person = query
        .get("initials")
        .or(query.get("name"))
        .map(String::as_str);
    match rules::fallback(
        param("d", "default"),
        person,
        &state.options.allowed_default_hosts,
    ) {
        Fallback::NotFound => Err(HttpError::NotFound),
        Fallback::Redirect(url) => {
            let mut response = StatusCode::FOUND.into_response();
            let h = response.headers_mut();
            common_headers(h);
            h.insert(
                header::LOCATION,
                HeaderValue::try_from(url).expect("a parsed URL is a valid header"),
            );
            h.insert(header::CACHE_CONTROL, state.service.cache_control.clone());
            Ok(response)
        }
        Fallback::Generated(kind) => {
            generated(&state, kind, digest.unwrap_or_default(), size, &headers).await
        }
        Fallback::Initials(name) => {
            let kind = avatar_contract::placeholder::Kind::Initial.name();
            generated(&state, kind, name, size, &headers).await
        }
    }
}

/// The avatar `digest` leads to for a request accepting `rating`, from
/// memory or the database, after the fallback (when on) has had its
/// chance to fetch one.
async fn avatar_for(
    state: &Arc<Provider>,
    digest: &str,
    rating: Rating,
) -> Result<Option<Uuid>, HttpError> {
    let backend = &state.backend;
    // A copy stored just now is in the database before the listener hears
    // of it, so the memory of this digest is skipped.
    let changed = fall_back(state, digest).await?;
    if let Some(remembered) = backend.cache.address(digest, rating).filter(|_| !changed) {
        return Ok(remembered);
    }
    let epoch = backend.cache.epoch();
    let pool = backend.pool.clone();
    let wanted = digest.to_string();
    let id = blocking(move || store::by_digest(&pool, &wanted, rating))
        .await?
        .map_err(|e| HttpError::fetch_failed(&backend.key, e))?;
    backend.cache.put_address(epoch, digest, rating, id);
    Ok(id)
}

/// With the fallback on, fetches a copy for an address that is set but has
/// no avatar: the first time before answering (within the fallback's
/// timeout), later in the background while the old copy is served. True
/// if this request changed what the digest leads to.
async fn fall_back(state: &Arc<Provider>, digest: &str) -> Result<bool, HttpError> {
    let Some(lookups) = &state.fallback else {
        return Ok(false);
    };
    let pool = state.backend.pool.clone();
    let (wanted, refresh) = (digest.to_string(), lookups.refresh_after());
    let due = {
        let pool = pool.clone();
        blocking(move || store::fallback_due(&pool, &wanted, refresh))
            .await?
            .map_err(|e| HttpError::fetch_failed(&state.backend.key, e))?
    };
    match due {
        Some(due) if due.copied => {
            let state = state.clone();
            tokio::spawn(async move {
                if let Some(lookups) = &state.fallback {
                    lookups.refresh(&pool, due).await;
                }
            });
            Ok(false)
        }
        Some(due) => Ok(lookups.refresh(&pool, due).await),
        None => Ok(false),
    }
}

async fn generated(
    state: &Provider,
    kind: &'static str,
    seed: String,
    size: u32,
    headers: &HeaderMap,
) -> Result<Response, HttpError> {
    // Keyed by what the image depends on: the exact size, and the seed
    // only for kinds that draw it, so a stream of made-up digests cannot
    // fill memory with copies of one silhouette.
    let seed = if rules::kind(kind).seeded() {
        seed
    } else {
        String::new()
    };
    // A name may hold anything, so the tag carries a digest of the seed.
    let tag: String = Sha256::digest(seed.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = HeaderValue::try_from(format!("\"{kind}-{tag}-{size}\""))
        .expect("hex digits are a valid header value");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| etag::names(tags, &etag));
    if fresh {
        return Ok(with_headers(
            StatusCode::NOT_MODIFIED.into_response(),
            state,
            kind,
            etag,
        ));
    }
    let key = (kind, seed.clone(), size);
    let kept = state
        .generated
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let bytes = match kept {
        Some(bytes) => bytes,
        None => {
            let pool = state.backend.pool.clone();
            let made = blocking(move || store::generated(&pool, kind, &seed, size))
                .await?
                .map_err(|e| HttpError::fetch_failed(&state.backend.key, e))?;
            let bytes = Bytes::from(made);
            state
                .generated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(key, bytes.clone(), drop);
            bytes
        }
    };
    Ok(with_headers(
        (StatusCode::OK, bytes).into_response(),
        state,
        kind,
        etag,
    ))
}

fn with_headers(
    mut response: Response,
    state: &Provider,
    kind: &str,
    etag: HeaderValue,
) -> Response {
    let h = response.headers_mut();
    common_headers(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rules::kind(kind).format().mime_type()),
    );
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, state.service.cache_control.clone());
    response
}
