//! The Libravatar protocol's request rules, apart from any HTTP: which
//! address digest, what size, and what to answer when there is no avatar.
//! <https://wiki.libravatar.org/api/>

/// What Libravatar clients get without `s`.
pub const DEFAULT_SIZE: u32 = 80;

use avatar_contract::placeholder::{Kind, NAMES};
use avatar_contract::{Format, Rating};

/// How much of a `name=` or `initials=` the initials are drawn from: the
/// first letter and the colour need no more, and the seed is a key of the
/// route's memory.
pub const MAX_NAME_CHARS: usize = 64;

/// The generated default a `d=` value names, by the contract's names that
/// Libravatar clients may use.
fn generated(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(n, kind)| *n == name && kind.libravatar())
        .map(|(n, _)| *n)
}

/// The kind of a name [`fallback`] returned.
pub fn kind(name: &str) -> Kind {
    Kind::parse(name).unwrap_or(Kind::Silhouette)
}

/// Default answers, from `d`/`default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// `d=404`: a plain 404.
    NotFound,
    /// A generated image: the extension's `avatar_default` kind.
    Generated(&'static str),
    /// `d=initials`, for the person named by `name=` or `initials=`: the
    /// initial placeholder, seeded by that name (at most
    /// [`MAX_NAME_CHARS`]).
    Initials(String),
    /// `d=<url>` whose host is allowed: a redirect there.
    Redirect(String),
}

/// The address digest in the path and the format a suffix names:
/// `/avatar/<md5>.jpg`, as many Gravatar clients write it, is the digest
/// in JPEG; without a suffix the `Accept` header decides. A suffix that
/// names no format the route serves makes the segment no digest.
pub fn digest_and_format(segment: &str) -> Option<(String, Option<Format>)> {
    match segment.rsplit_once('.') {
        Some((digest, suffix)) => {
            Some((self::digest(digest)?, Some(Format::from_extension(suffix)?)))
        }
        None => Some((digest(segment)?, None)),
    }
}

/// The address digest, lower-cased: 32 hex digits (MD5) or 64 (SHA-256).
/// Anything else names no avatar.
pub fn digest(segment: &str) -> Option<String> {
    let hex = segment.to_ascii_lowercase();
    (matches!(hex.len(), 32 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// `s`/`size`, leniently as the protocol asks: missing, empty, zero,
/// negative or not an integer is the default; too large is the maximum.
pub fn size(value: Option<&str>, max: u32) -> u32 {
    match value.map(str::trim).and_then(|v| v.parse::<i64>().ok()) {
        Some(s) if s >= 1 => s.min(i64::from(max)) as u32,
        _ => DEFAULT_SIZE.min(max),
    }
}

/// `f=y` / `forcedefault=y`.
pub fn forced(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("y"))
}

/// `r`/`rating`: the highest rating the request accepts, `g` when
/// missing or unknown, as Gravatar does.
pub fn rating(value: Option<&str>) -> Rating {
    value
        .map(|v| v.trim().to_ascii_lowercase())
        .and_then(|v| Rating::parse(&v))
        .unwrap_or_default()
}

/// `d`/`default`, with the person's `name=` or `initials=` (the latter
/// wins) for `d=initials`. A URL is followed only to an allowed host, so
/// the route cannot be made an open redirect; any other URL, anything
/// unknown, and initials without a name get the silhouette.
pub fn fallback(value: Option<&str>, person: Option<&str>, allowed_hosts: &[String]) -> Fallback {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Fallback::Generated("mm");
    };
    if value == "404" {
        return Fallback::NotFound;
    }
    if Kind::parse(value) == Some(Kind::Initial) {
        // PostgreSQL's text holds no NUL, and a name needs none.
        let person: Option<String> = person.map(|p| {
            p.trim()
                .chars()
                .filter(|&c| c != '\0')
                .take(MAX_NAME_CHARS)
                .collect()
        });
        return match person.filter(|p| !p.is_empty()) {
            Some(person) => Fallback::Initials(person),
            None => Fallback::Generated("mm"),
        };
    }
    if let Some(kind) = generated(value) {
        return Fallback::Generated(kind);
    }
    match url::Url::parse(value) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.username().is_empty()
                && url.password().is_none()
                && url.host_str().is_some_and(|host| {
                    allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host))
                }) =>
        {
            Fallback::Redirect(url.into())
        }
        _ => Fallback::Generated("mm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_lenient() {
        for (value, expected) in [
            (None, 80),
            (Some(""), 80),
            (Some("0"), 80),
            (Some("-3"), 80),
            (Some("abc"), 80),
            (Some("1.5"), 80),
            (Some("64"), 64),
            (Some(" 64 "), 64),
            (Some("1"), 1),
            (Some("512"), 512),
            (Some("513"), 512),
            (Some("99999999999999999999999"), 80),
        ] {
            assert_eq!(size(value, 512), expected, "{value:?}");
        }
        assert_eq!(size(Some("300"), 200), 200, "the maximum is configurable");
    }

    #[test]
    fn digests() {
        let md5 = "0bc83cb571cd1c50ba6f3e8a78ef1346";
        assert_eq!(digest(md5).as_deref(), Some(md5));
        assert_eq!(digest(&md5.to_uppercase()).as_deref(), Some(md5));
        assert_eq!(
            digest(&"a".repeat(64)).as_deref(),
            Some("a".repeat(64).as_str())
        );
        for bad in ["", "xyz", &"g".repeat(32), &"a".repeat(33), &"a".repeat(40)] {
            assert_eq!(digest(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn suffixes_name_a_format() {
        let md5 = "0bc83cb571cd1c50ba6f3e8a78ef1346";
        let with = |suffix: &str| digest_and_format(&format!("{md5}{suffix}"));
        assert_eq!(with(""), Some((md5.into(), None)));
        assert_eq!(with(".jpg"), Some((md5.into(), Some(Format::Jpeg))));
        assert_eq!(with(".JPEG"), Some((md5.into(), Some(Format::Jpeg))));
        assert_eq!(with(".png"), Some((md5.into(), Some(Format::Png))));
        assert_eq!(with(".webp"), Some((md5.into(), Some(Format::Webp))));
        for bad in [".gif", ".", ".jpg.jpg", "x.jpg"] {
            assert_eq!(with(bad), None, "{bad}");
        }
        assert_eq!(digest_and_format(".jpg"), None);
    }

    fn fallback_for(value: Option<&str>, allowed: &[String]) -> Fallback {
        fallback(value, None, allowed)
    }

    #[test]
    fn ratings_default_to_g() {
        for (value, expected) in [
            (None, Rating::G),
            (Some(""), Rating::G),
            (Some("g"), Rating::G),
            (Some("PG"), Rating::Pg),
            (Some(" r "), Rating::R),
            (Some("x"), Rating::X),
            (Some("nc-17"), Rating::G),
        ] {
            assert_eq!(rating(value), expected, "{value:?}");
        }
    }

    #[test]
    fn initials_need_a_name_and_keep_only_its_start() {
        assert_eq!(
            fallback(Some("initials"), Some("Ada Lovelace"), &[]),
            Fallback::Initials("Ada Lovelace".into())
        );
        assert_eq!(
            fallback(Some("initials"), Some("\0A\0da"), &[]),
            Fallback::Initials("Ada".into()),
            "no NUL reaches the database"
        );
        for nobody in [None, Some(""), Some("   "), Some("\0")] {
            assert_eq!(
                fallback(Some("initials"), nobody, &[]),
                Fallback::Generated("mm")
            );
        }
        let long = "é".repeat(10_000);
        assert_eq!(
            fallback(Some("initials"), Some(&long), &[]),
            Fallback::Initials("é".repeat(MAX_NAME_CHARS))
        );
        for kind in ["color", "wavatar"] {
            assert_eq!(fallback(Some(kind), None, &[]), Fallback::Generated(kind));
        }
    }

    #[test]
    fn defaults_and_the_redirect_allow_list() {
        let allowed = vec!["img.example.org".to_string()];
        assert_eq!(fallback_for(None, &allowed), Fallback::Generated("mm"));
        assert_eq!(fallback_for(Some("404"), &allowed), Fallback::NotFound);
        for kind in [
            "mm",
            "mp",
            "identicon",
            "retro",
            "monsterid",
            "robohash",
            "pagan",
            "wavatar",
            "color",
            "blank",
        ] {
            assert_eq!(
                fallback_for(Some(kind), &allowed),
                Fallback::Generated(kind)
            );
        }
        assert_eq!(
            fallback_for(Some("initial"), &allowed),
            Fallback::Generated("mm"),
            "pg_avatar's own kind needs a name, which Libravatar requests lack"
        );
        assert_eq!(
            fallback_for(Some("https://IMG.example.org/a.png"), &allowed),
            Fallback::Redirect("https://img.example.org/a.png".into())
        );
        for ignored in [
            "https://evil.example/a.png",
            "https://img.example.org.evil.example/",
            "https://user@img.example.org/",
            "javascript:alert(1)",
            "//img.example.org/a.png",
            "ftp://img.example.org/a.png",
            "nonsense",
        ] {
            assert_eq!(
                fallback_for(Some(ignored), &allowed),
                Fallback::Generated("mm"),
                "{ignored}"
            );
        }
        assert_eq!(
            fallback_for(Some("https://img.example.org/"), &[]),
            Fallback::Generated("mm")
        );
    }

    #[test]
    fn forcing() {
        assert!(forced(Some("y")) && forced(Some("Y")));
        assert!(!forced(None) && !forced(Some("n")) && !forced(Some("")));
    }
}
