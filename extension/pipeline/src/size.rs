//! Which sizes exist (the rule is the SQL contract's), and which rendition
//! each is made from.

pub use avatar_contract::size::MAX_SIZE;

use crate::Error;

/// The side length actually served for a requested `size`.
pub fn quantise(size: i64) -> Result<u32, Error> {
    Ok(avatar_contract::size::quantise(size)?)
}

/// The rendition small sizes are made from. Decoding dominates a cold
/// render, and a 512 px JPEG decodes in a sixteenth of the time of a 2048 px
/// master, so sizes of 256 and below are rendered from this one (itself an
/// ordinary cached rendition) rather than from the master.
pub const MEZZANINE: u32 = 512;

/// The rendition a `side` is resampled from, or `None` for the master.
/// Only for at least a 2x reduction, like shrink-on-load, so the second
/// resampling still has detail to filter; and only when the master is
/// larger than the mezzanine, or it would be a copy of the master.
pub fn render_source(side: u32, master_side: u32) -> Option<u32> {
    (2 * side <= MEZZANINE && master_side > MEZZANINE).then_some(MEZZANINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sizes_come_from_the_mezzanine_of_a_large_master() {
        assert_eq!(render_source(64, 2048), Some(MEZZANINE));
        assert_eq!(render_source(256, 600), Some(MEZZANINE));
        assert_eq!(render_source(300, 2048), None);
        assert_eq!(render_source(512, 2048), None);
        assert_eq!(render_source(64, 512), None);
        for side in avatar_contract::size::distinct_sizes() {
            assert_ne!(render_source(side, 2048), Some(side), "{side} from itself");
        }
    }
}
