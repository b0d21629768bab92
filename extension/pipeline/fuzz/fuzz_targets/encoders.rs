//! Every encoder and every placeholder, over sides, qualities, pixels and
//! seeds of the fuzzer's choosing: what `avatar_get(id, size, format)` and
//! `avatar_default(kind, seed, size)` do once a master is decoded. Valid
//! arguments always give an image of exactly that side, in its format;
//! pixels of the wrong length are an `Err`, never a panic.
#![no_main]

use avatar_contract::placeholder::NAMES;
use avatar_contract::Format;
use avatar_pipeline::{encode, placeholder};
use libfuzzer_sys::fuzz_target;

/// The side (1 to 300, which covers every block and stride remainder),
/// quality, and the rest of the input.
fn arguments(data: &[u8]) -> Option<(u32, u8, u8, &[u8])> {
    let (&[a, b, quality, pick], rest) = data.split_first_chunk::<4>()?;
    let side = 1 + u32::from(u16::from_le_bytes([a, b])) % 300;
    Some((side, quality, pick, rest))
}

fn side_of(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).expect("what the encoders write decodes");
    (image.width(), image.height())
}

fuzz_target!(|data: &[u8]| {
    let Some((side, quality, pick, rest)) = arguments(data) else {
        return;
    };
    let format = Format::ALL[usize::from(pick) % Format::ALL.len()];
    let len = (side * side * 3) as usize;
    let pixels: Vec<u8> = if rest.is_empty() {
        vec![0; len]
    } else {
        rest.iter().copied().cycle().take(len).collect()
    };
    let encoded = encode::encode(format, &pixels, side, quality).expect("valid pixels encode");
    assert_eq!(side_of(&encoded), (side, side), "{format:?}");
    assert!(encode::encode(format, &pixels[..len - 1], side, quality).is_err());

    let (name, kind) = NAMES[usize::from(pick) % NAMES.len()];
    let seed = String::from_utf8_lossy(rest);
    let drawn = placeholder::render(kind, &seed, side, quality).expect("a placeholder draws");
    let guessed = image::guess_format(&drawn).expect("a known format");
    assert_eq!(guessed.to_mime_type(), kind.format().mime_type(), "{name}");
    assert_eq!(side_of(&drawn), (side, side), "{name}");
});
