//! Which sizes exist.
//!
//! Clients ask for any size, but each avatar only ever stores a few: the
//! request is rounded up to the smaller of the next power of two and the
//! next step (10 px steps up to 100, then 50 px steps). This is Tryton's
//! rule; it caps the cache at [`distinct_sizes`] entries per avatar and
//! format, and it is what the route keys its memory and ETags by.

use std::fmt;

/// The largest avatar side, for both the stored master and any rendition.
pub const MAX_SIZE: u32 = 2048;

/// A requested size outside 1 to [`MAX_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeOutOfRange(pub i64);

impl fmt::Display for SizeOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "avatar size {} is out of range 1..{MAX_SIZE}", self.0)
    }
}

impl std::error::Error for SizeOutOfRange {}

/// `size` itself, if it is a side pg_avatar can make: 1 to [`MAX_SIZE`].
/// What the Libravatar route's exact sizes are.
pub fn exact(size: i64) -> Result<u32, SizeOutOfRange> {
    u32::try_from(size)
        .ok()
        .filter(|s| (1..=MAX_SIZE).contains(s))
        .ok_or(SizeOutOfRange(size))
}

/// The side length actually served for a requested `size`.
pub fn quantise(size: i64) -> Result<u32, SizeOutOfRange> {
    let s = exact(size)?;
    let step = if s <= 100 { 10 } else { 50 };
    Ok(s.next_power_of_two().min(s.div_ceil(step) * step))
}

/// Every size that [`quantise`] can return, smallest first.
pub fn distinct_sizes() -> Vec<u32> {
    let mut sizes: Vec<u32> = (1..=i64::from(MAX_SIZE))
        .map(|s| quantise(s).expect("in range"))
        .collect();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule exactly as Tryton writes it, with floating point, as an oracle.
    fn tryton(s: i64) -> u32 {
        let pow = 2f64.powf((s as f64).log2().ceil()) as u32;
        let step = if s <= 100 {
            10 * (s as f64 / 10.0).ceil() as u32
        } else {
            50 * (s as f64 / 50.0).ceil() as u32
        };
        pow.min(step)
    }

    #[test]
    fn matches_tryton_for_every_size() {
        for s in 1..=2048 {
            let q = quantise(s).unwrap();
            assert_eq!(q, tryton(s), "size {s}");
            assert!(q >= s as u32, "never smaller than asked: {s} -> {q}");
            assert!(q <= MAX_SIZE);
            assert_eq!(quantise(i64::from(q)).unwrap(), q, "idempotent at {q}");
        }
    }

    #[test]
    fn spot_values() {
        for (asked, got) in [
            (1, 1),
            (3, 4),
            (5, 8),
            (11, 16),
            (17, 20),
            (32, 32),
            (33, 40),
            (57, 60),
            (61, 64),
            (64, 64),
            (65, 70),
            (100, 100),
            (101, 128),
            (129, 150),
            (257, 300),
            (1000, 1000),
            (1025, 1050),
            (2047, 2048),
            (2048, 2048),
        ] {
            assert_eq!(quantise(asked).unwrap(), got, "size {asked}");
        }
    }

    #[test]
    fn bounded_cache() {
        let sizes = distinct_sizes();
        assert!(sizes.len() <= 60, "{} distinct sizes", sizes.len());
        assert!(sizes.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn out_of_range() {
        for bad in [0, -1, 2049, i64::from(i32::MAX), i64::from(i32::MIN)] {
            assert_eq!(quantise(bad), Err(SizeOutOfRange(bad)));
        }
    }
}
