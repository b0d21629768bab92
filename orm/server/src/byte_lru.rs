//! A least-recently-used map bounded by the bytes of its values, not by
//! their number: what the route keeps in memory is images, from a few
//! hundred bytes to a few hundred kilobytes each, so only a bound in bytes
//! says what it costs.

use std::hash::Hash;

use axum::body::Bytes;
use lru::LruCache;

pub(super) struct ByteLru<K: Hash + Eq, V> {
    lru: LruCache<K, V>,
    bytes: usize,
    max_bytes: usize,
}

/// What a value costs the map.
pub(super) trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl<K: Hash + Eq, V: Weight> ByteLru<K, V> {
    /// At most `max_bytes` of values; 0 keeps nothing.
    pub fn new(max_bytes: usize) -> Self {
        ByteLru {
            lru: LruCache::unbounded(),
            bytes: 0,
            max_bytes,
        }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.lru.get(key)
    }

    /// Keeps `value` unless it alone is over the bound, then drops the
    /// least recently used entries until the map is within it again. Calls
    /// `evicted` with each key dropped (not with a key whose value was
    /// replaced), and returns whether `key` is in the map now and was not
    /// before.
    pub fn put(&mut self, key: K, value: V, mut evicted: impl FnMut(K)) -> bool {
        if value.weight() > self.max_bytes {
            return false;
        }
        self.bytes += value.weight();
        let new = match self.lru.put(key, value) {
            Some(old) => {
                self.bytes -= old.weight();
                false
            }
            None => true,
        };
        while self.bytes > self.max_bytes {
            let Some((old_key, old)) = self.lru.pop_lru() else {
                break;
            };
            self.bytes -= old.weight();
            evicted(old_key);
        }
        new
    }

    pub fn pop(&mut self, key: &K) -> Option<V> {
        let value = self.lru.pop(key)?;
        self.bytes -= value.weight();
        Some(value)
    }

    pub fn clear(&mut self) {
        self.lru.clear();
        self.bytes = 0;
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.lru.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    #[test]
    fn bounded_by_bytes_oldest_out_first() {
        let mut map = ByteLru::new(100);
        let mut out = Vec::new();
        for key in 0..5 {
            assert!(map.put(key, bytes(30), |k| out.push(k)));
        }
        assert_eq!(out, [0, 1]);
        assert_eq!(map.bytes(), 90);
        assert!(map.get(&0).is_none());
        map.get(&2);
        map.put(5, bytes(30), |k| out.push(k));
        assert_eq!(out, [0, 1, 3], "2 was used since");
    }

    #[test]
    fn a_value_over_the_bound_is_not_kept_and_replacing_is_counted_once() {
        let mut map = ByteLru::new(100);
        assert!(!map.put(1, bytes(101), |_| panic!("nothing to evict")));
        assert_eq!(map.bytes(), 0);
        assert!(map.put(1, bytes(60), |_| {}));
        assert!(!map.put(1, bytes(40), |_| panic!("a replaced value is not evicted")));
        assert_eq!(map.bytes(), 40);
        assert_eq!(map.pop(&1).map(|b| b.len()), Some(40));
        assert_eq!(map.bytes(), 0);
        assert!(ByteLru::<u8, Bytes>::new(0).max_bytes() == 0);
    }
}
