//! Strong ETags from the image digest, the size and the format, and
//! If-None-Match.

use axum::http::HeaderValue;

use crate::Format;

/// 64 bits of the SHA-1 are plenty to tell one image from its successor.
/// JPEG's tags carry no format, so they stay what they were before there
/// were other formats and clients' caches stay valid.
pub fn for_image(sha1: &str, size: u32, format: Format) -> HeaderValue {
    let digest = &sha1[..sha1.len().min(16)];
    let tag = match format {
        Format::Jpeg => format!("\"{digest}-{size}\""),
        other => format!("\"{digest}-{size}-{}\"", other.name()),
    };
    HeaderValue::try_from(tag).expect("hex and digits are a valid header value")
}

/// Whether an `If-None-Match` header names this representation. The
/// comparison is weak, as RFC 9110 asks for If-None-Match.
pub fn matches(if_none_match: &str, sha1: &str, size: u32, format: Format) -> bool {
    let ours = for_image(sha1, size, format);
    let ours = ours.to_str().expect("ASCII");
    if_none_match
        .split(',')
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";

    #[test]
    fn etag_names_digest_and_size() {
        assert_eq!(for_image(SHA1, 64, Format::Jpeg), "\"a9993e364706816a-64\"");
        assert_eq!(
            for_image(SHA1, 64, Format::Webp),
            "\"a9993e364706816a-64-webp\""
        );
        assert_ne!(
            for_image(SHA1, 64, Format::Jpeg),
            for_image(SHA1, 128, Format::Jpeg)
        );
    }

    #[test]
    fn if_none_match_forms() {
        for header in [
            "\"a9993e364706816a-64\"",
            "W/\"a9993e364706816a-64\"",
            "\"x\", \"a9993e364706816a-64\"",
            "*",
        ] {
            assert!(matches(header, SHA1, 64, Format::Jpeg), "{header}");
        }
        for header in [
            "\"a9993e364706816a-128\"",
            "\"a9993e364706816a\"",
            "",
            "a9993e364706816a-64",
        ] {
            assert!(!matches(header, SHA1, 64, Format::Jpeg), "{header}");
            assert!(!matches(header, SHA1, 64, Format::Png) || header == "*");
        }
    }
}
