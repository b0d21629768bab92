//! Untrusted bytes through everything avatar_set and avatar_get do:
//! decode, normalise, render. Any panic, abort or sanitizer report is a bug;
//! an `Err` is the expected answer to garbage.
#![no_main]

use avatar_pipeline::{Limits, Pipeline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast; the checks are the same as in production.
    let pipeline = Pipeline {
        limits: Limits {
            max_input_bytes: 1 << 20,
            max_input_pixels: 4_000_000,
        },
        ..Pipeline::default()
    };
    if let Ok(master) = pipeline.normalise(data, 256) {
        let rendition = pipeline.render(&master.jpeg, 32).expect("a master always renders");
        assert_eq!(rendition.side, 32);
    }
});
