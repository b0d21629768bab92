//! The opt-in fallback to an external Libravatar provider (off unless
//! configured). For an address that is set but has no avatar, the server,
//! never the browser, asks the address's own provider (DNS SRV
//! federation) or else a central one, and stores what it gets as a normal
//! avatar under the resource `libravatar:<sha256>`.
//!
//! Enabling it sends the SHA-256 of users' addresses to those providers.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use avatar_contract::limits::{FALLBACK_MAX_BYTES, FALLBACK_SIZE};
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{Resolver, TokioResolver};
use lru::LruCache;
use rand::Rng;
use url::Url;

use crate::federation::{self, Scheme, SrvRecord};
use crate::store::{self, Due, Pool};

/// The fallback's settings; [`RemoteFallback::default`] is what the README
/// documents.
#[derive(Debug, Clone)]
pub struct RemoteFallback {
    /// Asked when the address's domain publishes no Libravatar SRV
    /// records; `None` asks only federated providers. Gravatar works here
    /// too (`https://www.gravatar.com`): it takes the same URLs.
    pub central: Option<Url>,
    /// Follow `_avatars-sec._tcp` / `_avatars._tcp` SRV records.
    pub federation: bool,
    /// For a whole lookup: DNS, connection and body.
    pub timeout: Duration,
    /// Outgoing lookups allowed per minute, across all addresses.
    pub lookups_per_minute: u32,
    /// How long "this address has no avatar there" is believed. Failures
    /// are believed for at most 10 minutes of it.
    pub negative_ttl: Duration,
    /// How long SRV answers, present or absent, are kept.
    pub srv_ttl: Duration,
    /// A fetched copy older than this is fetched again the next time it
    /// is served; the stale copy is served meanwhile.
    pub refresh_after: Duration,
    /// A DNS server to ask instead of the system's (`/etc/resolv.conf`).
    pub nameserver: Option<SocketAddr>,
    /// Addresses outside the public internet that may still be connected
    /// to, each with its port: a provider inside your own network, or a
    /// test's servers on loopback. Any other private address is refused,
    /// or an address's owner could aim the server at its own network.
    pub private_allowed: Vec<SocketAddr>,
}

impl Default for RemoteFallback {
    fn default() -> Self {
        RemoteFallback {
            central: Some(Url::parse("https://seccdn.libravatar.org").expect("a valid URL")),
            federation: true,
            timeout: Duration::from_secs(5),
            lookups_per_minute: 30,
            negative_ttl: Duration::from_secs(6 * 3600),
            srv_ttl: Duration::from_secs(24 * 3600),
            refresh_after: Duration::from_secs(7 * 24 * 3600),
            nameserver: None,
            private_allowed: Vec::new(),
        }
    }
}

const KEPT: usize = 10_000;
/// Redirects the central service may send (Libravatar's sends unknown
/// addresses on to Gravatar); each hop is checked and pinned afresh.
const MAX_HOPS: usize = 3;
const FAILURE_TTL: Duration = Duration::from_secs(600);

pub(super) struct Lookups {
    options: RemoteFallback,
    resolver: TokioResolver,
    /// By domain: until when, and the records found (or none).
    srv: Mutex<LruCache<String, (Instant, Option<Service>)>>,
    /// By SHA-256: until when the address is known to have no avatar.
    negative: Mutex<LruCache<String, Instant>>,
    /// Addresses being looked up now, so concurrent requests ask once.
    in_flight: Mutex<HashSet<String>>,
    /// The current minute's start and the lookups made in it.
    budget: Mutex<(Instant, u32)>,
}

/// A domain's Libravatar service: its scheme and SRV records.
type Service = (Scheme, Vec<SrvRecord>);

/// What one lookup found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Image(Vec<u8>),
    Nothing,
}

impl Lookups {
    pub fn new(options: RemoteFallback) -> Lookups {
        let resolver = match options.nameserver {
            Some(server) => Resolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    vec![],
                    NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true),
                ),
                TokioConnectionProvider::default(),
            )
            .build(),
            None => Resolver::builder_tokio()
                .unwrap_or_else(|_| {
                    Resolver::builder_with_config(
                        ResolverConfig::default(),
                        TokioConnectionProvider::default(),
                    )
                })
                .build(),
        };
        let kept = NonZeroUsize::new(KEPT).expect("not zero");
        Lookups {
            options,
            resolver,
            srv: Mutex::new(LruCache::new(kept)),
            negative: Mutex::new(LruCache::new(kept)),
            in_flight: Mutex::new(HashSet::new()),
            budget: Mutex::new((Instant::now(), 0)),
        }
    }

    pub fn refresh_after(&self) -> Duration {
        self.options.refresh_after
    }

    /// Brings the copy for `due` up to date: fetches and stores it, drops
    /// it when the provider no longer has one, or leaves things as they
    /// are when the lookup is not allowed now (negative cache, rate limit,
    /// another request already at it) or fails. True if it stored or
    /// dropped a copy.
    pub async fn refresh(&self, pool: &Pool, due: Due) -> bool {
        let sha256 = due.sha256.clone();
        if self.known_missing(&sha256) || !self.in_flight_insert(&sha256) {
            return false;
        }
        let _done = InFlight(self, sha256.clone());
        if !self.take_budget() {
            tracing::warn!("libravatar fallback: lookups per minute exhausted");
            return false;
        }
        let found = tokio::time::timeout(self.options.timeout, self.look_up(&due)).await;
        let stored = match found {
            Ok(Ok(Found::Image(bytes))) => {
                let pool = pool.clone();
                let sha = sha256.clone();
                tokio::task::spawn_blocking(move || store::set_fallback(&pool, &sha, &bytes)).await
            }
            Ok(Ok(Found::Nothing)) => {
                self.remember_missing(&sha256, self.options.negative_ttl);
                if due.copied {
                    let pool = pool.clone();
                    let sha = sha256.clone();
                    tokio::task::spawn_blocking(move || store::drop_fallback(&pool, &sha)).await
                } else {
                    return false;
                }
            }
            Ok(Err(why)) => {
                tracing::info!(%why, "libravatar fallback: lookup failed");
                self.remember_missing(&sha256, self.failure_ttl());
                return false;
            }
            Err(_) => {
                tracing::info!("libravatar fallback: lookup timed out");
                self.remember_missing(&sha256, self.failure_ttl());
                return false;
            }
        };
        match stored {
            Ok(Ok(())) => true,
            Ok(Err(why)) => {
                // Not an image we accept, or the database is down.
                tracing::info!(%why, "libravatar fallback: not stored");
                self.remember_missing(&sha256, self.failure_ttl());
                false
            }
            Err(join) => {
                tracing::error!(error = %join, "libravatar fallback worker panicked");
                false
            }
        }
    }

    async fn look_up(&self, due: &Due) -> Result<Found, String> {
        if self.options.federation {
            if let Some((scheme, records)) = self.srv_records(&due.domain).await {
                let chosen =
                    federation::select(&records, |total| rand::rng().random_range(0..=total))
                        .ok_or("no usable SRV target")?
                        .clone();
                return self.fetch_federated(scheme, &chosen, &due.sha256).await;
            }
        }
        match &self.options.central {
            Some(central) => {
                self.fetch(avatar_url(central, &due.sha256)?, MAX_HOPS)
                    .await
            }
            None => Ok(Found::Nothing),
        }
    }

    /// The domain's SRV records, secure service first, cached for
    /// `srv_ttl` whether found or not.
    async fn srv_records(&self, domain: &str) -> Option<Service> {
        let now = Instant::now();
        if let Some((until, answer)) = lock(&self.srv).get(domain) {
            if *until > now {
                return answer.clone();
            }
        }
        let mut answer = None;
        for (name, scheme) in federation::srv_names(domain) {
            let Ok(lookup) = self.resolver.srv_lookup(name.as_str()).await else {
                continue;
            };
            let records: Vec<SrvRecord> = lookup
                .iter()
                .map(|srv| SrvRecord {
                    priority: srv.priority(),
                    weight: srv.weight(),
                    port: srv.port(),
                    target: srv.target().to_ascii(),
                })
                .collect();
            if !records.is_empty() {
                answer = Some((scheme, records));
                break;
            }
        }
        lock(&self.srv).put(
            domain.to_string(),
            (now + self.options.srv_ttl, answer.clone()),
        );
        answer
    }

    /// A federated provider gets no redirects: each hop would be a host
    /// its domain's owner chose after the SRV record was checked.
    async fn fetch_federated(
        &self,
        scheme: Scheme,
        target: &SrvRecord,
        sha256: &str,
    ) -> Result<Found, String> {
        let host = target.target.trim_end_matches('.');
        let base = Url::parse(&format!("{}://{host}:{}", scheme.as_str(), target.port))
            .map_err(|e| e.to_string())?;
        self.fetch(avatar_url(&base, sha256)?, 0).await
    }

    /// Fetches `url`, following at most `hops` redirects. Every host, the
    /// first and each redirect's, is resolved here and checked, and the
    /// connection goes to exactly the checked addresses, so neither a
    /// second DNS answer (DNS rebinding) nor a `Location` header can aim
    /// the server at its own network.
    async fn fetch(&self, mut url: Url, hops: usize) -> Result<Found, String> {
        for _ in 0..=hops {
            let addrs = self.checked_addresses(&url).await?;
            let host = url.host_str().unwrap_or_default().to_string();
            let client = client(&self.options, &host, &addrs).map_err(|e| e.to_string())?;
            let mut response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            match response.status().as_u16() {
                200 => return read_body(&mut response).await.map(Found::Image),
                404 => return Ok(Found::Nothing),
                301 | 302 | 303 | 307 | 308 => {
                    let location = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .ok_or("a redirect without a Location")?;
                    url = url.join(location).map_err(|e| e.to_string())?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err(format!("a redirect to a {} URL", url.scheme()));
                    }
                }
                status => return Err(format!("the provider answered {status}")),
            }
        }
        Err(format!("more than {hops} redirects"))
    }

    /// The addresses `url`'s host may be reached at: a host name's that are
    /// public (or allowed), an address literal if it is.
    async fn checked_addresses(&self, url: &Url) -> Result<Vec<SocketAddr>, String> {
        let port = url.port_or_known_default().ok_or("a URL without a port")?;
        let ips: Vec<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
            Some(url::Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
            Some(url::Host::Domain(name)) if federation::valid_target(name, port) => self
                .resolver
                .lookup_ip(name)
                .await
                .map_err(|e| format!("resolving {name}: {e}"))?
                .iter()
                .collect(),
            _ => return Err("not a host name".into()),
        };
        let mut allowed = Vec::with_capacity(ips.len());
        for ip in ips {
            let addr = SocketAddr::new(ip, port);
            if federation::is_public(ip) || self.options.private_allowed.contains(&addr) {
                allowed.push(addr);
            } else {
                tracing::info!("libravatar fallback: refused {ip}: not a public address");
            }
        }
        if allowed.is_empty() {
            return Err("no public address".into());
        }
        Ok(allowed)
    }

    fn known_missing(&self, sha256: &str) -> bool {
        let mut negative = lock(&self.negative);
        match negative.get(sha256) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                negative.pop(sha256);
                false
            }
            None => false,
        }
    }

    fn remember_missing(&self, sha256: &str, ttl: Duration) {
        lock(&self.negative).put(sha256.to_string(), Instant::now() + ttl);
    }

    /// A failure (timeout, refused connection, a file that is no image)
    /// may be passing, so it is believed for less long than a 404.
    fn failure_ttl(&self) -> Duration {
        self.options.negative_ttl.min(FAILURE_TTL)
    }

    fn in_flight_insert(&self, sha256: &str) -> bool {
        lock(&self.in_flight).insert(sha256.to_string())
    }

    fn take_budget(&self) -> bool {
        let mut budget = lock(&self.budget);
        if budget.0.elapsed() >= Duration::from_secs(60) {
            *budget = (Instant::now(), 0);
        }
        if budget.1 >= self.options.lookups_per_minute {
            return false;
        }
        budget.1 += 1;
        true
    }
}

/// Clears the in-flight mark however the lookup ends.
struct InFlight<'a>(&'a Lookups, String);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.0.in_flight).remove(&self.1);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn avatar_url(base: &Url, sha256: &str) -> Result<Url, String> {
    let mut url = base
        .join(&format!("avatar/{sha256}"))
        .map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("s", &FALLBACK_SIZE.to_string())
        .append_pair("d", "404");
    Ok(url)
}

/// A client that connects `host` to `addrs` only, and follows no
/// redirect itself (the caller checks each hop).
fn client(
    options: &RemoteFallback,
    host: &str,
    addrs: &[SocketAddr],
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(options.timeout)
        .no_proxy()
        .user_agent(concat!("pg-avatar/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(host, addrs)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// At most what the extension will accept of a fetched copy.
async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > FALLBACK_MAX_BYTES {
            return Err(format!("the provider sent over {FALLBACK_MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
