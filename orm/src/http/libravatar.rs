//! `GET /avatar/{digest}`: the Libravatar API over one database's avatars,
//! so a deployment can be a federated Libravatar provider. The protocol's
//! rules are in [`crate::libravatar`]; this is their HTTP glue.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use uuid::Uuid;

use super::byte_lru::ByteLru;
use super::fallback::{Lookups, RemoteFallback};
use super::{common_headers, failed, not_found, serve_avatar, store, Request, Service};
use crate::libravatar::{self, Fallback};

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

pub(super) struct Provider {
    pub service: Arc<Service>,
    pub database_key: String,
    pub options: Libravatar,
    generated: Mutex<ByteLru<(&'static str, String, u32), Bytes>>,
    fallback: Option<Lookups>,
}

impl Provider {
    pub fn new(service: Arc<Service>, database_key: String, options: Libravatar) -> Provider {
        let fallback = options.fallback.clone().map(Lookups::new);
        Provider {
            fallback,
            service,
            database_key,
            options,
            generated: Mutex::new(ByteLru::new(GENERATED_BYTES)),
        }
    }
}

pub(super) async fn handle(
    State(state): State<Arc<Provider>>,
    Path(segment): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let param = |short: &str, long: &str| query.get(short).or(query.get(long)).map(String::as_str);
    let size = libravatar::size(param("s", "size"), state.options.max_size);
    let digest = libravatar::digest(&segment);
    let backend = &state.service.backends[&state.database_key];

    if let (Some(digest), false) = (&digest, libravatar::forced(param("f", "forcedefault"))) {
        match avatar_for(&state, digest).await {
            Ok(Some(id)) => {
                let request = Request {
                    size,
                    format: None,
                    version: None,
                };
                let served = serve_avatar(
                    &state.service,
                    backend,
                    &state.database_key,
                    id,
                    request,
                    &headers,
                )
                .await;
                if let Some(response) = served {
                    return response;
                }
            }
            Ok(None) => {}
            Err(response) => return response,
        }
    }

    match libravatar::fallback(param("d", "default"), &state.options.allowed_default_hosts) {
        Fallback::NotFound => not_found(),
        Fallback::Redirect(url) => {
            let mut response = StatusCode::FOUND.into_response();
            let h = response.headers_mut();
            common_headers(h);
            h.insert(
                header::LOCATION,
                HeaderValue::try_from(url).expect("a parsed URL is a valid header"),
            );
            h.insert(header::CACHE_CONTROL, state.service.cache_control.clone());
            response
        }
        Fallback::Generated(kind) => {
            generated(&state, kind, digest.unwrap_or_default(), size, &headers).await
        }
    }
}

/// The avatar `digest` leads to, from memory or the database, after the
/// fallback (when on) has had its chance to fetch one.
async fn avatar_for(state: &Arc<Provider>, digest: &str) -> Result<Option<Uuid>, Response> {
    let backend = &state.service.backends[&state.database_key];
    // A copy stored just now is in the database before the listener hears
    // of it, so the memory of this digest is skipped.
    let changed = fall_back(state, digest).await?;
    if let Some(remembered) = backend.cache.address(digest).filter(|_| !changed) {
        return Ok(remembered);
    }
    let epoch = backend.cache.epoch();
    let pool = backend.pool.clone();
    let wanted = digest.to_string();
    match tokio::task::spawn_blocking(move || store::by_digest(&pool, &wanted)).await {
        Ok(Ok(id)) => {
            backend.cache.put_address(epoch, digest, id);
            Ok(id)
        }
        Ok(Err(e)) => Err(failed(&state.database_key, e)),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

/// With the fallback on, fetches a copy for an address that is set but has
/// no avatar: the first time before answering (within the fallback's
/// timeout), later in the background while the old copy is served. True
/// if this request changed what the digest leads to.
async fn fall_back(state: &Arc<Provider>, digest: &str) -> Result<bool, Response> {
    let Some(lookups) = &state.fallback else {
        return Ok(false);
    };
    let pool = state.service.backends[&state.database_key].pool.clone();
    let (wanted, refresh) = (digest.to_string(), lookups.refresh_after());
    let due = {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || store::fallback_due(&pool, &wanted, refresh)).await
    };
    match due {
        Ok(Ok(Some(due))) if due.copied => {
            let state = state.clone();
            tokio::spawn(async move {
                if let Some(lookups) = &state.fallback {
                    lookups.refresh(&pool, due).await;
                }
            });
            Ok(false)
        }
        Ok(Ok(Some(due))) => Ok(lookups.refresh(&pool, due).await),
        Ok(Ok(None)) => Ok(false),
        Ok(Err(e)) => Err(failed(&state.database_key, e)),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

async fn generated(
    state: &Provider,
    kind: &'static str,
    seed: String,
    size: u32,
    headers: &HeaderMap,
) -> Response {
    // Keyed by what the image depends on: the served size, and the seed
    // only for kinds that draw it, so a stream of made-up digests cannot
    // fill memory with copies of one silhouette.
    let size = avatar_contract::size::quantise(i64::from(size)).unwrap_or(size);
    let seed = if libravatar::seeded(kind) {
        seed
    } else {
        String::new()
    };
    let etag = HeaderValue::try_from(format!("\"{kind}-{seed}-{size}\""))
        .expect("hex digits are a valid header value");
    if headers.get(header::IF_NONE_MATCH).is_some_and(|tags| {
        tags.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == etag.as_bytes())
    }) {
        return with_headers(StatusCode::NOT_MODIFIED.into_response(), state, kind, etag);
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
            let pool = state.service.backends[&state.database_key].pool.clone();
            let made =
                tokio::task::spawn_blocking(move || store::generated(&pool, kind, &seed, size))
                    .await;
            match made {
                Ok(Ok(bytes)) => {
                    let bytes = Bytes::from(bytes);
                    state
                        .generated
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .put(key, bytes.clone(), drop);
                    bytes
                }
                Ok(Err(e)) => return failed(&state.database_key, e),
                Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    };
    with_headers((StatusCode::OK, bytes).into_response(), state, kind, etag)
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
        HeaderValue::from_static(if kind == "blank" {
            "image/png"
        } else {
            "image/jpeg"
        }),
    );
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, state.service.cache_control.clone());
    response
}
