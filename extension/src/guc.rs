//! Settings. Renditions and masters are shared by every role, so what
//! shapes them (quality, input limits) is a superuser's to set; only the
//! size of the caller's own masters is the caller's choice.

use avatar_contract::limits::{DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_INPUT_PIXELS};
use avatar_pipeline::{Limits, Pipeline, MAX_SIZE};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

pub static JPEG_QUALITY: GucSetting<i32> = GucSetting::<i32>::new(85);
pub static MAX_SIZE_SETTING: GucSetting<i32> = GucSetting::<i32>::new(MAX_SIZE as i32);
pub static MAX_INPUT_BYTES: GucSetting<i32> =
    GucSetting::<i32>::new(DEFAULT_MAX_INPUT_BYTES as i32);
pub static MAX_INPUT_PIXELS: GucSetting<i32> =
    GucSetting::<i32>::new(DEFAULT_MAX_INPUT_PIXELS as i32);

pub fn register() {
    GucRegistry::define_int_guc(
        c"pg_avatar.jpeg_quality",
        c"JPEG and WebP quality (1-100) of stored masters and served renditions.",
        c"Renditions are memoized and served to every role, so only a superuser may \
          change this (in postgresql.conf, or with ALTER DATABASE or ALTER ROLE): a \
          session that could lower it would lower what everyone is served. Renditions \
          already memoized keep the quality they were made at until their image changes.",
        &JPEG_QUALITY,
        1,
        100,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_avatar.max_size",
        c"Largest side, in pixels, of a master stored by avatar_set; larger uploads are shrunk.",
        c"It shapes only the masters that the session itself stores, which its role may \
          replace anyway, so any role may lower it.",
        &MAX_SIZE_SETTING,
        1,
        MAX_SIZE as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_avatar.max_input_bytes",
        c"Largest upload avatar_set accepts.",
        c"Checked before anything is decoded. It protects the server's memory, so only \
          a superuser may raise it.",
        &MAX_INPUT_BYTES,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_int_guc(
        c"pg_avatar.max_input_pixels",
        c"Most pixels an upload may declare in its header; checked before decoding.",
        c"An upload costs a backend up to twice its pixels' 8-bit RGBA size, about 400 MB \
          at the default of 50 million (48 MP phone photos fit). It protects the server's \
          memory, so only a superuser may raise it.",
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

/// The pipeline as configured, with `limits` as the tightest it may use.
pub fn pipeline_within(limits: Limits) -> Pipeline<'static> {
    Pipeline {
        quality: JPEG_QUALITY.get().clamp(1, 100) as u8,
        limits: Limits {
            max_input_bytes: MAX_INPUT_BYTES.get().max(1) as usize,
            max_input_pixels: MAX_INPUT_PIXELS.get().max(1) as u64,
        }
        .min(limits),
        checkpoint: &checkpoint,
    }
}

/// The pipeline as configured.
pub fn pipeline() -> Pipeline<'static> {
    pipeline_within(Limits {
        max_input_bytes: usize::MAX,
        max_input_pixels: u64::MAX,
    })
}

pub fn max_size() -> u32 {
    MAX_SIZE_SETTING.get().clamp(1, MAX_SIZE as i32) as u32
}
