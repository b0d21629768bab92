//! What an untrusted image may cost, by default and for the fallback.

/// `pg_avatar.max_input_bytes`'s default: a 48 MP phone photo is 8 to 16 MB.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 16 << 20;

/// `pg_avatar.max_input_pixels`'s default: the 48 MP of today's phone
/// cameras, with room. An upload costs a backend at most twice its 8-bit
/// RGBA pixels (BENCHMARKS.md), so about 400 MB at this limit.
pub const DEFAULT_MAX_INPUT_PIXELS: u64 = 50_000_000;

/// The side the Libravatar fallback asks providers for: the largest the
/// protocol serves.
pub const FALLBACK_SIZE: u32 = 512;

/// A provider's answer may be at most this long; the route stops reading
/// there, and the extension refuses longer copies too.
pub const FALLBACK_MAX_BYTES: usize = 2 << 20;

/// Four times the pixels of what was asked for: a provider that sends
/// more is not sending an avatar, and is not decoded.
pub const FALLBACK_MAX_PIXELS: u64 = 4 * (FALLBACK_SIZE as u64) * (FALLBACK_SIZE as u64);

/// The longest alt text `avatar_set_description` keeps, in characters:
/// Mastodon's limit for a media description.
pub const MAX_DESCRIPTION_CHARS: usize = 1500;
