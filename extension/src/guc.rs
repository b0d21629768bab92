//! Settings. The input limits protect the server's memory, so only a
//! superuser may change them; quality and master size are a user's choice.

use std::ffi::CStr;

use avatar_pipeline::{Limits, Pipeline, MAX_SIZE};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

pub static JPEG_QUALITY: GucSetting<i32> = GucSetting::<i32>::new(85);
pub static MAX_SIZE_SETTING: GucSetting<i32> = GucSetting::<i32>::new(MAX_SIZE as i32);
pub static MAX_INPUT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(16 << 20);
pub static MAX_INPUT_PIXELS: GucSetting<i32> = GucSetting::<i32>::new(50_000_000);

pub fn register() {
    let int = |name: &'static CStr, short: &'static CStr, setting, min, max, context, flags| {
        GucRegistry::define_int_guc(name, short, c"", setting, min, max, context, flags)
    };
    int(
        c"pg_avatar.jpeg_quality",
        c"JPEG quality (1-100) of stored masters and served sizes.",
        &JPEG_QUALITY,
        1,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
    int(
        c"pg_avatar.max_size",
        c"Largest side, in pixels, of a stored master; larger uploads are shrunk.",
        &MAX_SIZE_SETTING,
        1,
        MAX_SIZE as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    int(
        c"pg_avatar.max_input_bytes",
        c"Largest upload avatar_set accepts.",
        &MAX_INPUT_BYTES,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_BYTE,
    );
    int(
        c"pg_avatar.max_input_pixels",
        c"Most pixels an upload may declare in its header; checked before decoding.",
        &MAX_INPUT_PIXELS,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    // Rejects misspelt pg_avatar.* settings instead of silently ignoring them.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"pg_avatar".as_ptr()) };
}

fn checkpoint() {
    pgrx::check_for_interrupts!();
}

/// The pipeline as configured for the current session.
pub fn pipeline() -> Pipeline<'static> {
    Pipeline {
        quality: JPEG_QUALITY.get().clamp(1, 100) as u8,
        limits: Limits {
            max_input_bytes: MAX_INPUT_BYTES.get().max(1) as usize,
            max_input_pixels: MAX_INPUT_PIXELS.get().max(1) as u64,
        },
        checkpoint: &checkpoint,
    }
}

pub fn max_size() -> u32 {
    MAX_SIZE_SETTING.get().clamp(1, MAX_SIZE as i32) as u32
}
