//! Strong ETags from the image digest, the size and the format, and the
//! one reading of If-None-Match.

use axum::http::HeaderValue;

use avatar_contract::Format;

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

/// Whether an `If-None-Match` header names this image's representation.
pub fn matches(if_none_match: &str, sha1: &str, size: u32, format: Format) -> bool {
    names(if_none_match, &for_image(sha1, size, format))
}

/// Whether an `If-None-Match` header names the representation tagged
/// `ours`: `*`, or any listed tag, compared weakly as RFC 9110 §13.1.2
/// asks (a `W/` prefix does not matter).
pub fn names(if_none_match: &str, ours: &HeaderValue) -> bool {
    let ours = ours.as_bytes();
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
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

    /// The Libravatar route's generated images are tagged by kind and
    /// seed, and read by the same rules.
    #[test]
    fn any_tag_is_read_the_same_way() {
        let ours = HeaderValue::from_static("\"identicon-ab-80\"");
        for header in [
            "\"identicon-ab-80\"",
            "W/\"identicon-ab-80\"",
            "*",
            "\"x\" , \"identicon-ab-80\"",
        ] {
            assert!(names(header, &ours), "{header}");
        }
        for header in ["\"identicon-ab-8\"", "identicon-ab-80", ""] {
            assert!(!names(header, &ours), "{header}");
        }
    }
}
