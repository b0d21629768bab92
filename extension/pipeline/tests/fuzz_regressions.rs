//! Every input the fuzzer ever found a problem with (fuzz/regressions/),
//! run through the fuzz target's steps: each must give an avatar or an
//! error, never a panic.

use avatar_pipeline::{Limits, Pipeline};

#[test]
fn every_kept_input_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let pipeline = Pipeline {
        limits: Limits {
            max_input_bytes: 1 << 20,
            max_input_pixels: 4_000_000,
        },
        ..Pipeline::default()
    };
    let mut tried = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        if let Ok(master) = pipeline.normalise(&input, 256) {
            let rendition = pipeline
                .render(&master.jpeg, 32)
                .unwrap_or_else(|e| panic!("{}: master does not render: {e}", path.display()));
            assert_eq!(rendition.side, 32, "{}", path.display());
        }
        tried += 1;
    }
    assert!(tried > 0, "no regression inputs in {}", dir.display());
}
