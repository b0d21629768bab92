//! Strong ETags from the image digest and the size, and If-None-Match.

use axum::http::HeaderValue;

/// 64 bits of the SHA-1 are plenty to tell one image from its successor.
pub fn for_image(sha1: &str, size: u32) -> HeaderValue {
    HeaderValue::try_from(format!("\"{}-{size}\"", &sha1[..sha1.len().min(16)]))
        .expect("hex and digits are a valid header value")
}

/// Whether an `If-None-Match` header names this representation. The
/// comparison is weak, as RFC 9110 asks for If-None-Match.
pub fn matches(if_none_match: &str, sha1: &str, size: u32) -> bool {
    let ours = for_image(sha1, size);
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
        assert_eq!(for_image(SHA1, 64), "\"a9993e364706816a-64\"");
        assert_ne!(for_image(SHA1, 64), for_image(SHA1, 128));
    }

    #[test]
    fn if_none_match_forms() {
        for header in [
            "\"a9993e364706816a-64\"",
            "W/\"a9993e364706816a-64\"",
            "\"x\", \"a9993e364706816a-64\"",
            "*",
        ] {
            assert!(matches(header, SHA1, 64), "{header}");
        }
        for header in [
            "\"a9993e364706816a-128\"",
            "\"a9993e364706816a\"",
            "",
            "a9993e364706816a-64",
        ] {
            assert!(!matches(header, SHA1, 64), "{header}");
        }
    }
}
