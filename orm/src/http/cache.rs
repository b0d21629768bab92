//! The route's memory of recently served renditions and of which avatar
//! an address digest leads to, kept honest by the extension's
//! `avatar_changed` and `avatar_address_changed` notifications.
//!
//! A hit answers 200 or 304 without a database round trip. Entries are only
//! trusted while a listener connection is subscribed: if it drops, the cache
//! empties and stays bypassed until the listener is back, because
//! notifications sent meanwhile are lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use lru::LruCache;
use uuid::Uuid;

use crate::changes::{self, Change, ADDRESS_CHANNEL, CHANNEL};
use crate::Format;

#[derive(Clone)]
pub struct Entry {
    pub sha1: Arc<str>,
    pub bytes: Bytes,
}

pub struct Cache {
    entries: Mutex<Entries>,
    /// Whether notifications are being received, so entries can be trusted.
    listening: AtomicBool,
    /// Bumped by every eviction. A fetch that started before an eviction
    /// may have read what was evicted, so it must not be cached.
    epoch: AtomicU64,
}

struct Entries {
    lru: LruCache<(Uuid, u32, Format), Entry>,
    bytes: usize,
    max_bytes: usize,
    /// By lower-case digest: the avatar it leads to, or none. Bounded in
    /// entries, so no stream of made-up digests can grow it.
    addresses: Option<LruCache<String, Option<Uuid>>>,
}

impl Cache {
    /// `max_bytes` bounds the image bytes held and `max_addresses` the
    /// digests remembered; 0 turns either off.
    pub fn new(max_bytes: usize, max_addresses: usize) -> Cache {
        Cache {
            entries: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                bytes: 0,
                max_bytes,
                addresses: std::num::NonZeroUsize::new(max_addresses).map(LruCache::new),
            }),
            listening: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    pub fn get(&self, id: Uuid, size: u32, format: Format) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        self.lock().lru.get(&(id, size, format)).cloned()
    }

    /// Call before reading from the database; pass the result to [`Cache::put`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn put(&self, epoch: u64, id: Uuid, size: u32, format: Format, entry: Entry) {
        let mut entries = self.lock();
        // Checked under the lock that evictions also take, so an eviction
        // either happens first (and the epoch differs) or removes this entry.
        if !self.enabled() || self.epoch() != epoch || entry.bytes.len() > entries.max_bytes {
            return;
        }
        entries.bytes += entry.bytes.len();
        if let Some(old) = entries.lru.put((id, size, format), entry) {
            entries.bytes -= old.bytes.len();
        }
        while entries.bytes > entries.max_bytes {
            match entries.lru.pop_lru() {
                Some((_, old)) => entries.bytes -= old.bytes.len(),
                None => break,
            }
        }
    }

    /// What an address digest (lower case) leads to, if remembered.
    pub fn address(&self, digest: &str) -> Option<Option<Uuid>> {
        if !self.enabled() {
            return None;
        }
        self.lock().addresses.as_mut()?.get(digest).copied()
    }

    /// Like [`Cache::put`], for an address digest.
    pub fn put_address(&self, epoch: u64, digest: &str, id: Option<Uuid>) {
        let mut entries = self.lock();
        if !self.enabled() || self.epoch() != epoch {
            return;
        }
        if let Some(addresses) = entries.addresses.as_mut() {
            addresses.put(digest.to_string(), id);
        }
    }

    fn evict_address(&self, digests: &[String; 2]) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(addresses) = entries.addresses.as_mut() {
            for digest in digests {
                addresses.pop(digest);
            }
        }
    }

    fn evict(&self, id: Uuid) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let renditions: Vec<(Uuid, u32, Format)> = entries
            .lru
            .iter()
            .map(|(key, _)| *key)
            .filter(|(entry_id, _, _)| *entry_id == id)
            .collect();
        for key in renditions {
            if let Some(old) = entries.lru.pop(&key) {
                entries.bytes -= old.bytes.len();
            }
        }
    }

    /// Forgets every entry, and starts or stops trusting new ones.
    fn reset(&self, listening: bool) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.lru.clear();
        entries.bytes = 0;
        if let Some(addresses) = entries.addresses.as_mut() {
            addresses.clear();
        }
        self.listening.store(listening, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The data stays consistent at every await-free step, so a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often the listener looks for notifications, and so how long a
/// replaced or deleted avatar may still be served from memory.
pub const POLL: Duration = Duration::from_millis(50);
/// How often an idle listener checks that its connection is alive.
const PING: Duration = Duration::from_secs(2);

/// How often a listener whose database is a hot standby (which cannot
/// LISTEN) checks whether it has been promoted.
const STANDBY_RECHECK: Duration = Duration::from_secs(30);

/// Subscribes to `avatar_changed` on `url` for as long as the process runs,
/// reconnecting after failures, and evicts what each notification names.
pub fn spawn_listener(url: String, cache: Arc<Cache>) {
    {
        let entries = cache.lock();
        if entries.max_bytes == 0 && entries.addresses.is_none() {
            return;
        }
    }
    std::thread::Builder::new()
        .name("avatar-listener".into())
        .spawn(move || {
            let mut backoff = POLL;
            let mut told_standby = false;
            loop {
                let stopped = listen(&url, &cache);
                cache.reset(false);
                // libpq's messages can name the database, so they are not logged.
                match stopped {
                    Stopped::Lost => {
                        tracing::warn!("avatar cache listener lost its connection; cache bypassed");
                        backoff = POLL;
                    }
                    Stopped::Standby => {
                        if !told_standby {
                            tracing::info!(
                                "a hot standby cannot LISTEN: serving it without the memory cache"
                            );
                            told_standby = true;
                        }
                        std::thread::sleep(STANDBY_RECHECK);
                        continue;
                    }
                    Stopped::Unreachable => backoff = (backoff * 2).min(Duration::from_secs(2)),
                }
                std::thread::sleep(backoff);
            }
        })
        .expect("spawning the listener thread");
}

enum Stopped {
    Unreachable,
    Standby,
    /// It was subscribed, then failed.
    Lost,
}

fn listen(url: &str, cache: &Cache) -> Stopped {
    let Ok(mut conn) = PgConnection::establish(url) else {
        return Stopped::Unreachable;
    };
    match diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "pg_is_in_recovery()",
    ))
    .get_result::<bool>(&mut conn)
    {
        Ok(false) => {}
        Ok(true) => return Stopped::Standby,
        Err(_) => return Stopped::Unreachable,
    }
    for channel in [CHANNEL, ADDRESS_CHANNEL] {
        if diesel::sql_query(format!("LISTEN {channel}"))
            .execute(&mut conn)
            .is_err()
        {
            return Stopped::Unreachable;
        }
    }
    // Anything cached before this point may have missed a notification.
    cache.reset(true);
    let mut idle = Duration::ZERO;
    loop {
        let mut any = false;
        for notification in conn.notifications_iter() {
            let Ok(notification) = notification else {
                return Stopped::Lost;
            };
            any = true;
            let payload = &notification.payload;
            let understood = if notification.channel == ADDRESS_CHANNEL {
                changes::parse_address(payload).map(|digests| cache.evict_address(&digests))
            } else {
                Change::parse(payload).map(|change| cache.evict(change.id))
            };
            if understood.is_none() {
                // Not ours to interpret: forget everything rather than guess.
                cache.reset(true);
            }
        }
        std::thread::sleep(POLL);
        idle = if any { Duration::ZERO } else { idle + POLL };
        if idle >= PING {
            if diesel::sql_query("SELECT 1").execute(&mut conn).is_err() {
                return Stopped::Lost;
            }
            idle = Duration::ZERO;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn entry(bytes: usize) -> Entry {
        Entry {
            sha1: "a".repeat(40).into(),
            bytes: Bytes::from(vec![0; bytes]),
        }
    }

    fn listening(max_bytes: usize) -> Cache {
        let cache = Cache::new(max_bytes, 3);
        cache.reset(true);
        cache
    }

    #[test]
    fn nothing_is_trusted_without_a_listener() {
        let cache = Cache::new(1000, 3);
        let id = id(1);
        cache.put(cache.epoch(), id, 64, Format::Jpeg, entry(10));
        assert!(cache.get(id, 64, Format::Jpeg).is_none());
        cache.reset(true);
        cache.put(cache.epoch(), id, 64, Format::Jpeg, entry(10));
        assert!(cache.get(id, 64, Format::Jpeg).is_some());
        cache.reset(false);
        assert!(cache.get(id, 64, Format::Jpeg).is_none());
    }

    #[test]
    fn a_notification_evicts_every_size_of_that_avatar_only() {
        let cache = listening(1000);
        let (a, b) = (id(1), id(2));
        for size in [32, 64] {
            cache.put(cache.epoch(), a, size, Format::Jpeg, entry(10));
            cache.put(cache.epoch(), a, size, Format::Webp, entry(10));
        }
        cache.put(cache.epoch(), b, 64, Format::Jpeg, entry(10));
        cache.evict(a);
        assert!(
            cache.get(a, 32, Format::Jpeg).is_none() && cache.get(a, 64, Format::Jpeg).is_none()
        );
        assert!(
            cache.get(a, 64, Format::Webp).is_none(),
            "every format goes"
        );
        assert!(cache.get(b, 64, Format::Jpeg).is_some());
    }

    #[test]
    fn a_fetch_that_raced_an_eviction_is_not_cached() {
        let cache = listening(1000);
        let id = id(1);
        let before = cache.epoch();
        cache.evict(id);
        cache.put(before, id, 64, Format::Jpeg, entry(10));
        assert!(cache.get(id, 64, Format::Jpeg).is_none());
    }

    #[test]
    fn memory_is_bounded_by_bytes() {
        let cache = listening(100);
        let ids: Vec<Uuid> = (0..5).map(id).collect();
        for id in &ids {
            cache.put(cache.epoch(), *id, 64, Format::Jpeg, entry(30));
        }
        assert!(cache.lock().bytes <= 100);
        assert!(
            cache.get(ids[0], 64, Format::Jpeg).is_none(),
            "oldest evicted first"
        );
        assert!(cache.get(ids[4], 64, Format::Jpeg).is_some());
        cache.put(cache.epoch(), id(9), 64, Format::Jpeg, entry(101));
        assert!(cache.lock().bytes <= 100);
    }

    #[test]
    fn addresses_are_bounded_evicted_by_digest_and_race_safe() {
        let cache = listening(0);
        let digest = |n: u32| format!("{n:032x}");
        for n in 0..5 {
            cache.put_address(cache.epoch(), &digest(n), Some(id(n.into())));
        }
        assert_eq!(cache.address(&digest(0)), None, "only the last 3 are kept");
        assert_eq!(cache.address(&digest(4)), Some(Some(id(4))));
        cache.put_address(cache.epoch(), &digest(9), None);
        assert_eq!(
            cache.address(&digest(9)),
            Some(None),
            "a miss is remembered"
        );

        let before = cache.epoch();
        cache.evict_address(&[digest(9), "x".repeat(64)]);
        assert_eq!(cache.address(&digest(9)), None);
        cache.put_address(before, &digest(9), Some(id(1)));
        assert_eq!(cache.address(&digest(9)), None, "read before the eviction");
        assert_eq!(cache.address(&digest(4)), Some(Some(id(4))), "others stay");

        let off = Cache::new(10, 0);
        off.reset(true);
        off.put_address(off.epoch(), &digest(1), None);
        assert_eq!(off.address(&digest(1)), None);
    }
}
