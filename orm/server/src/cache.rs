//! The route's memory of recently served renditions and of which avatar
//! an address digest leads to, kept honest by the extension's
//! `avatar_changed` and `avatar_address_changed` notifications.
//!
//! A hit answers 200 or 304 without a database round trip. Entries are only
//! trusted while a listener connection is subscribed and has lately heard
//! from its database ([`LIVENESS`]): if it drops or stalls, the cache
//! empties and stays bypassed until the listener is back, because
//! notifications sent meanwhile may be lost.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use avatar_contract::{Format, Rating};
use axum::body::Bytes;
use lru::LruCache;
use uuid::Uuid;

use crate::byte_lru::{ByteLru, Weight};
use diesel_avatar::changes::PING;

#[derive(Clone)]
pub struct Entry {
    pub sha1: Arc<str>,
    pub bytes: Bytes,
}

pub struct Cache {
    entries: Mutex<Entries>,
    /// Whether notifications are being received, so entries can be trusted.
    listening: AtomicBool,
    /// When the listener last heard from its database (see [`LIVENESS`]),
    /// in milliseconds since the cache was made.
    heard_at: AtomicU64,
    made: Instant,
}

/// Entries are trusted only while the listener has heard from its
/// database this recently: a listener stuck in a call to a database that
/// stopped answering cannot hear notifications either. A healthy one hears
/// every 50 ms, and pings a quiet connection every [`PING`]: two pings
/// and a second (5 s).
pub const LIVENESS: Duration = Duration::from_secs(2 * PING.as_secs() + 1);

impl Weight for Entry {
    fn weight(&self) -> usize {
        self.bytes.len()
    }
}

type Key = (Uuid, u32, Format);

struct Entries {
    lru: ByteLru<Key, Entry>,
    /// The sizes and formats of each avatar in `lru`, so that evicting one
    /// avatar costs its own entries, not a look at everyone's.
    by_id: HashMap<Uuid, Vec<(u32, Format)>>,
    /// By lower-case digest: the avatar it leads to, or none, for each
    /// rating a request may accept (the avatar's own rating decides which
    /// see it). Bounded in entries, so no stream of made-up digests can
    /// grow it.
    addresses: Option<LruCache<String, ByRating>>,
    evictions: Evictions,
}

/// What was evicted, and when, so that a fetch which started before an
/// eviction of what it fetched is not cached (it may have read the old
/// state). Per key: an eviction of one avatar, which any role can cause by
/// NOTIFY, does not spoil the fetches of others.
struct Evictions {
    /// Ticks once per eviction.
    clock: u64,
    recent: LruCache<Evicted, u64>,
    /// Evictions older than what `recent` remembers: a fetch that started
    /// before this cannot tell whether its key was among them.
    floor: u64,
}

#[derive(Hash, PartialEq, Eq)]
enum Evicted {
    Avatar(Uuid),
    Address(String),
}

/// Enough that even a flood of forged notifications pushes out only
/// evictions far older than any fetch in flight.
const EVICTIONS_KEPT: usize = 16_384;

impl Evictions {
    fn new() -> Evictions {
        Evictions {
            clock: 0,
            recent: LruCache::new(NonZeroUsize::new(EVICTIONS_KEPT).expect("not zero")),
            floor: 0,
        }
    }

    fn record(&mut self, what: Evicted) {
        self.clock += 1;
        if let Some((_, at)) = self.recent.push(what, self.clock) {
            self.floor = self.floor.max(at);
        }
    }

    /// Everything before now counts as evicted.
    fn all(&mut self) {
        self.clock += 1;
        self.floor = self.clock;
        self.recent.clear();
    }

    fn since(&self, what: &Evicted, epoch: u64) -> bool {
        self.floor > epoch || self.recent.peek(what).is_some_and(|&at| at > epoch)
    }
}

impl Cache {
    /// `max_bytes` bounds the image bytes held and `max_addresses` the
    /// digests remembered; 0 turns either off.
    pub fn new(max_bytes: usize, max_addresses: usize) -> Cache {
        Cache {
            entries: Mutex::new(Entries {
                lru: ByteLru::new(max_bytes),
                by_id: HashMap::new(),
                addresses: NonZeroUsize::new(max_addresses).map(LruCache::new),
                evictions: Evictions::new(),
            }),
            listening: AtomicBool::new(false),
            heard_at: AtomicU64::new(0),
            made: Instant::now(),
        }
    }

    /// Whether it holds anything at all, and so needs a listener.
    pub fn keeps_anything(&self) -> bool {
        let entries = self.lock();
        entries.lru.max_bytes() > 0 || entries.addresses.is_some()
    }

    fn enabled(&self) -> bool {
        self.listening.load(Ordering::Acquire) && self.is_live()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.made.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The listener has just heard from its database.
    pub fn heard(&self) {
        self.heard_at(Instant::now());
    }

    /// The listener last heard from its database `when`: a notification or
    /// a ping's answer, not merely a pass of its loop.
    pub fn heard_at(&self, when: Instant) {
        let at = when.saturating_duration_since(self.made).as_millis();
        self.heard_at
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Whether the listener heard from its database within [`LIVENESS`].
    pub fn is_live(&self) -> bool {
        let heard = self.heard_at.load(Ordering::Acquire);
        self.now().saturating_sub(heard) < LIVENESS.as_millis() as u64
    }

    pub fn get(&self, id: Uuid, size: u32, format: Format) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        self.lock().lru.get(&(id, size, format)).cloned()
    }

    /// Call before reading from the database; pass the result to [`Cache::put`].
    pub fn epoch(&self) -> u64 {
        self.lock().evictions.clock
    }

    pub fn put(&self, epoch: u64, id: Uuid, size: u32, format: Format, entry: Entry) {
        let mut entries = self.lock();
        // Checked under the lock that evictions also take, so an eviction
        // either happens first (and is seen) or removes this entry.
        if !self.enabled() || entries.evictions.since(&Evicted::Avatar(id), epoch) {
            return;
        }
        let Entries { lru, by_id, .. } = &mut *entries;
        if lru.put((id, size, format), entry, |old| unindex(by_id, old)) {
            by_id.entry(id).or_default().push((size, format));
        }
    }

    /// What an address digest (lower case) leads to for a request that
    /// accepts `rating`, if remembered.
    pub fn address(&self, digest: &str, rating: Rating) -> Option<Option<Uuid>> {
        if !self.enabled() {
            return None;
        }
        self.lock().addresses.as_mut()?.get(digest)?[slot(rating)]
    }

    /// Like [`Cache::put`], for an address digest and the rating asked for.
    pub fn put_address(&self, epoch: u64, digest: &str, rating: Rating, id: Option<Uuid>) {
        let mut entries = self.lock();
        if !self.enabled()
            || entries
                .evictions
                .since(&Evicted::Address(digest.to_string()), epoch)
        {
            return;
        }
        if let Some(addresses) = entries.addresses.as_mut() {
            addresses.get_or_insert_mut(digest.to_string(), ByRating::default)[slot(rating)] =
                Some(id);
        }
    }

    pub fn evict_address(&self, digests: &[String; 2]) {
        let mut entries = self.lock();
        for digest in digests {
            entries.evictions.record(Evicted::Address(digest.clone()));
            if let Some(addresses) = entries.addresses.as_mut() {
                addresses.pop(digest);
            }
        }
    }

    pub fn evict(&self, id: Uuid) {
        let mut entries = self.lock();
        entries.evictions.record(Evicted::Avatar(id));
        for (size, format) in entries.by_id.remove(&id).unwrap_or_default() {
            entries.lru.pop(&(id, size, format));
        }
    }

    /// Forgets every entry, and starts or stops trusting new ones.
    pub fn reset(&self, listening: bool) {
        let mut entries = self.lock();
        entries.evictions.all();
        entries.lru.clear();
        entries.by_id.clear();
        if let Some(addresses) = entries.addresses.as_mut() {
            addresses.clear();
        }
        if listening {
            self.heard();
        }
        self.listening.store(listening, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The data stays consistent at every await-free step, so a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One answer per rating a request may accept, in [`Rating::ALL`]'s order.
type ByRating = [Option<Option<Uuid>>; Rating::ALL.len()];

fn slot(rating: Rating) -> usize {
    Rating::ALL
        .iter()
        .position(|&r| r == rating)
        .expect("every rating is in ALL")
}

fn unindex(by_id: &mut HashMap<Uuid, Vec<(u32, Format)>>, (id, size, format): Key) {
    if let Some(kept) = by_id.get_mut(&id) {
        kept.retain(|&k| k != (size, format));
        if kept.is_empty() {
            by_id.remove(&id);
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

    /// A listener stuck in a call to its database hears nothing, so what
    /// the cache holds is not trusted once it has been quiet too long.
    #[test]
    fn nothing_is_trusted_from_a_listener_that_has_gone_quiet() {
        let mut cache = listening(1000);
        let id = id(1);
        cache.put(cache.epoch(), id, 64, Format::Jpeg, entry(10));
        assert!(cache.get(id, 64, Format::Jpeg).is_some());
        cache.made -= LIVENESS;
        assert!(!cache.is_live());
        assert!(cache.get(id, 64, Format::Jpeg).is_none());
        cache.put(cache.epoch(), id, 32, Format::Jpeg, entry(10));
        cache.heard();
        assert!(
            cache.get(id, 32, Format::Jpeg).is_none(),
            "not kept while quiet"
        );
        assert!(cache.get(id, 64, Format::Jpeg).is_some());
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

    /// Any role can make the route evict any id it likes, as often as it
    /// likes; that must not keep other avatars out of memory.
    #[test]
    fn evicting_one_avatar_does_not_spoil_fetches_of_others() {
        let cache = listening(1000);
        let before = cache.epoch();
        for n in 100..200 {
            cache.evict(id(n));
        }
        cache.put(before, id(1), 64, Format::Jpeg, entry(10));
        assert!(cache.get(id(1), 64, Format::Jpeg).is_some());
        // Past what is remembered of evictions, a fetch that started before
        // them cannot tell, and is not cached.
        let long_ago = cache.epoch();
        for n in 0..(EVICTIONS_KEPT as u128 + 10) {
            cache.evict(id(1000 + n));
        }
        cache.put(long_ago, id(2), 64, Format::Jpeg, entry(10));
        assert!(cache.get(id(2), 64, Format::Jpeg).is_none());
    }

    /// The index by avatar stays exactly the entries held, through puts,
    /// replacements, evictions and the byte bound pushing entries out.
    #[test]
    fn the_index_by_avatar_matches_the_entries() {
        let cache = listening(200);
        let mut x: u64 = 7;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (n, size, op) = (
                (x >> 33) % 20,
                [32, 64, 128][((x >> 40) % 3) as usize],
                (x >> 50) % 4,
            );
            if op == 0 {
                cache.evict(id(n.into()));
            } else {
                cache.put(
                    cache.epoch(),
                    id(n.into()),
                    size,
                    Format::Jpeg,
                    entry(((x >> 20) % 60) as usize),
                );
            }
            let entries = cache.lock();
            let indexed: usize = entries.by_id.values().map(Vec::len).sum();
            assert_eq!(indexed, entries.lru.iter().count());
            for (&(id, size, format), _) in entries.lru.iter() {
                assert!(entries.by_id[&id].contains(&(size, format)));
            }
            assert!(entries.lru.bytes() <= 200);
            assert_eq!(
                entries.lru.bytes(),
                entries
                    .lru
                    .iter()
                    .map(|(_, e)| e.bytes.len())
                    .sum::<usize>()
            );
        }
    }

    #[test]
    fn memory_is_bounded_by_bytes() {
        let cache = listening(100);
        let ids: Vec<Uuid> = (0..5).map(id).collect();
        for id in &ids {
            cache.put(cache.epoch(), *id, 64, Format::Jpeg, entry(30));
        }
        assert!(cache.lock().lru.bytes() <= 100);
        assert!(
            cache.get(ids[0], 64, Format::Jpeg).is_none(),
            "oldest evicted first"
        );
        assert!(cache.get(ids[4], 64, Format::Jpeg).is_some());
        cache.put(cache.epoch(), id(9), 64, Format::Jpeg, entry(101));
        assert!(cache.lock().lru.bytes() <= 100);
    }

    #[test]
    fn addresses_are_bounded_evicted_by_digest_and_race_safe() {
        let cache = listening(0);
        let digest = |n: u32| format!("{n:032x}");
        let g = Rating::G;
        for n in 0..5 {
            cache.put_address(cache.epoch(), &digest(n), g, Some(id(n.into())));
        }
        assert_eq!(
            cache.address(&digest(0), g),
            None,
            "only the last 3 are kept"
        );
        assert_eq!(cache.address(&digest(4), g), Some(Some(id(4))));
        cache.put_address(cache.epoch(), &digest(9), g, None);
        assert_eq!(
            cache.address(&digest(9), g),
            Some(None),
            "a miss is remembered"
        );

        let before = cache.epoch();
        cache.evict_address(&[digest(9), "x".repeat(64)]);
        assert_eq!(cache.address(&digest(9), g), None);
        cache.put_address(before, &digest(9), g, Some(id(1)));
        assert_eq!(
            cache.address(&digest(9), g),
            None,
            "read before the eviction"
        );
        assert_eq!(
            cache.address(&digest(4), g),
            Some(Some(id(4))),
            "others stay"
        );

        let off = Cache::new(10, 0);
        off.reset(true);
        off.put_address(off.epoch(), &digest(1), g, None);
        assert_eq!(off.address(&digest(1), g), None);
    }

    #[test]
    fn each_rating_asked_for_is_remembered_apart_and_evicted_together() {
        let cache = listening(0);
        let digest = "a".repeat(32);
        cache.put_address(cache.epoch(), &digest, Rating::G, None);
        cache.put_address(cache.epoch(), &digest, Rating::X, Some(id(1)));
        assert_eq!(cache.address(&digest, Rating::G), Some(None));
        assert_eq!(cache.address(&digest, Rating::X), Some(Some(id(1))));
        assert_eq!(cache.address(&digest, Rating::Pg), None, "never asked");
        cache.evict_address(&[digest.clone(), "b".repeat(64)]);
        for rating in Rating::ALL {
            assert_eq!(cache.address(&digest, rating), None, "{rating}");
        }
    }
}
