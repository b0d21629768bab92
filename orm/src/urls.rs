//! Public avatar URLs, built and parsed in one place:
//! `{base}/avatar/{db}/{id}?s={size}&v={version}`, with `&f={format}`
//! when the URL names its format.
//!
//! - `{db}` is a keyed hash of the database name, so a URL tells nobody
//!   which database it came from, and nobody without the secret can make
//!   one for another database.
//! - `{id}` is the avatar's random public id, as 32 lower-case hex digits.
//! - `{version}` is a prefix of the image's SHA-1: a new image gets a new
//!   URL, so caches may keep every URL forever.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;
use uuid::Uuid;

pub use avatar_contract::size::MAX_SIZE;

use crate::html::Img;
use crate::Format;

/// The pixel densities a `srcset` offers: ordinary, retina and the 3x of
/// phones (Gitea #12350, Mastodon #34802 ask for these).
pub const DENSITIES: [u32; 3] = [1, 2, 3];

/// The size served when a URL names none.
pub const DEFAULT_SIZE: u32 = 64;
/// Hex digits of the SHA-1 in `v`: 48 bits, plenty to tell versions apart.
pub const VERSION_LEN: usize = 12;
/// Secrets shorter than this are refused: the database key is only as
/// unguessable as the secret.
pub const MIN_SECRET_LEN: usize = 16;

/// 128 bits of HMAC-SHA256, base64url: 22 characters.
const DATABASE_KEY_BYTES: usize = 16;
const DATABASE_KEY_LEN: usize = 22;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    Base(String),
    ShortSecret,
    /// The Libravatar route names a database that is not configured.
    UnknownDatabase,
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlError::Base(why) => write!(f, "invalid base URL: {why}"),
            UrlError::ShortSecret => {
                write!(f, "the URL secret must be at least {MIN_SECRET_LEN} bytes")
            }
            UrlError::UnknownDatabase => {
                write!(
                    f,
                    "the Libravatar route's database is not among those configured"
                )
            }
        }
    }
}

impl std::error::Error for UrlError {}

/// The `{db}` path segment for a database name.
pub fn database_key(database: &str, secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    // Domain separation: the same secret may key other things.
    mac.update(b"pg_avatar database key\0");
    mac.update(database.as_bytes());
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..DATABASE_KEY_BYTES])
}

/// The `v` parameter for an image's SHA-1.
pub fn version(sha1: &str) -> &str {
    &sha1[..sha1.len().min(VERSION_LEN)]
}

/// Builds the public URLs of one database's avatars.
#[derive(Debug, Clone)]
pub struct AvatarUrls {
    base: Url,
    database_key: String,
}

impl AvatarUrls {
    /// `base` is where the route is mounted, e.g. `https://cdn.example.com`
    /// or `https://example.com/static`; its path is kept.
    pub fn new(base: &str, database: &str, secret: &[u8]) -> Result<AvatarUrls, UrlError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(UrlError::ShortSecret);
        }
        let base = Url::parse(base).map_err(|e| UrlError::Base(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(UrlError::Base(format!("{base} is not an http(s) URL")));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(UrlError::Base(format!("{base} has a query or fragment")));
        }
        Ok(AvatarUrls {
            base,
            database_key: database_key(database, secret),
        })
    }

    pub fn database_key(&self) -> &str {
        &self.database_key
    }

    /// The URL of avatar `id` whose image has SHA-1 `sha1`, at `size`, in
    /// the format the client's `Accept` header picks (the answer carries
    /// `Vary: Accept`). The size is written as the one served, so every
    /// size that gives the same image gives the same URL.
    pub fn url(&self, id: Uuid, sha1: &str, size: u32) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new()")
            .pop_if_empty()
            .extend(["avatar", &self.database_key, &id.simple().to_string()]);
        let served = avatar_contract::size::quantise(i64::from(size)).unwrap_or(size);
        url.query_pairs_mut()
            .append_pair("s", &served.to_string())
            .append_pair("v", version(sha1));
        url
    }

    /// The same URL naming its format, whatever the client accepts: the one
    /// to use behind a CDN that ignores `Vary` (many do, and would keep
    /// whichever format was asked for first).
    pub fn url_as(&self, id: Uuid, sha1: &str, size: u32, format: Format) -> Url {
        let mut url = self.url(id, sha1, size);
        url.query_pairs_mut().append_pair("f", format.name());
        url
    }
}

impl AvatarUrls {
    /// A `srcset` for an avatar laid out at `css_size` CSS pixels:
    /// `url 1x, url 2x, url 3x`, each at that many times the size,
    /// quantised and capped at [`MAX_SIZE`]. A density whose URL would be
    /// the previous one's (once capped) is left out: it would fetch nothing
    /// sharper.
    pub fn srcset(&self, id: Uuid, sha1: &str, css_size: u32) -> String {
        let css_size = css_size.clamp(1, MAX_SIZE);
        let mut candidates: Vec<(Url, u32)> = Vec::with_capacity(DENSITIES.len());
        for density in DENSITIES {
            let url = self.url(id, sha1, css_size.saturating_mul(density).min(MAX_SIZE));
            if candidates.last().is_none_or(|(last, _)| *last != url) {
                candidates.push((url, density));
            }
        }
        candidates
            .iter()
            .map(|(url, density)| format!("{url} {density}x"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// An `<img>` of the avatar laid out at `css_size` CSS pixels, with its
    /// `srcset` and `alt` text; write it with `{}`, already escaped.
    pub fn img(&self, id: Uuid, sha1: &str, css_size: u32, alt: &str) -> Img {
        let side = css_size.clamp(1, MAX_SIZE);
        Img {
            src: self.url(id, sha1, side).into(),
            srcset: self.srcset(id, sha1, side),
            side,
            alt: alt.to_string(),
        }
    }
}

/// A request path's avatar, before looking anything up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarPath {
    pub database_key: String,
    pub id: Uuid,
}

/// Why a path or size was refused. Deliberately vague about which part of
/// the path was wrong: the route answers every path error the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    NotFound,
    /// A parameter no URL this module builds has: answered 400 with the text.
    BadRequest(String),
}

/// Parses the `{db}` and `{id}` segments of a request path.
pub fn parse_path(database_key: &str, id: &str) -> Result<AvatarPath, RequestError> {
    let key_ok = database_key.len() == DATABASE_KEY_LEN
        && database_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    // Exactly the form `url()` writes: no dashes, no upper case, no braces.
    let id_ok = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !key_ok || !id_ok {
        return Err(RequestError::NotFound);
    }
    let id = Uuid::try_parse(id).map_err(|_| RequestError::NotFound)?;
    Ok(AvatarPath {
        database_key: database_key.to_string(),
        id,
    })
}

/// The `s` parameter: absent means [`DEFAULT_SIZE`]; anything but an
/// integer from 1 to [`MAX_SIZE`] is refused.
pub fn parse_size(s: Option<&str>) -> Result<u32, RequestError> {
    let Some(s) = s else { return Ok(DEFAULT_SIZE) };
    match s.parse::<u32>() {
        Ok(size) if (1..=MAX_SIZE).contains(&size) && !s.starts_with('+') => Ok(size),
        _ => Err(RequestError::BadRequest(format!(
            "s must be an integer from 1 to {MAX_SIZE}, not {:?}",
            s.chars().take(20).collect::<String>()
        ))),
    }
}

/// The `f` parameter: absent means the client's `Accept` header decides.
pub fn parse_format(f: Option<&str>) -> Result<Option<Format>, RequestError> {
    f.map(|name| {
        Format::parse(name).ok_or_else(|| {
            RequestError::BadRequest(format!(
                "f must be jpeg, png or webp, not {:?}",
                name.chars().take(20).collect::<String>()
            ))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"0123456789abcdef-test-secret";

    #[test]
    fn shape_of_a_url() {
        let urls =
            AvatarUrls::new("https://cdn.example.com/static/", "production", SECRET).unwrap();
        let id = Uuid::parse_str("5b0f2f7e-8e4c-4f7a-9b1d-2a6c3e8f9d10").unwrap();
        let url = urls.url(id, "a9993e364706816aba3e25717850c26c9cd0d89d", 128);
        let key = urls.database_key();
        assert_eq!(
            url.as_str(),
            format!("https://cdn.example.com/static/avatar/{key}/5b0f2f7e8e4c4f7a9b1d2a6c3e8f9d10?s=128&v=a9993e364706")
        );
        assert!(!url.as_str().contains("production"));
        assert_eq!(key.len(), DATABASE_KEY_LEN);
    }

    #[test]
    fn base_path_is_kept_with_or_without_slash() {
        let id = Uuid::nil();
        for base in ["https://h.example/p", "https://h.example/p/"] {
            let url = AvatarUrls::new(base, "db", SECRET)
                .unwrap()
                .url(id, "00", 64);
            assert!(url.path().starts_with("/p/avatar/"), "{url}");
        }
        let url = AvatarUrls::new("http://h.example", "db", SECRET)
            .unwrap()
            .url(id, "00", 64);
        assert!(url.path().starts_with("/avatar/"), "{url}");
    }

    #[test]
    fn the_key_depends_on_name_and_secret() {
        let a = database_key("prod", SECRET);
        assert_ne!(a, database_key("prod2", SECRET));
        assert_ne!(a, database_key("prod", b"another-secret-of-16+"));
        assert_eq!(a, database_key("prod", SECRET), "stable");
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert_eq!(
            AvatarUrls::new("https://x.example", "db", b"short").unwrap_err(),
            UrlError::ShortSecret
        );
        for base in [
            "ftp://x.example",
            "not a url",
            "https://x.example/?a=1",
            "mailto:a@b.example",
        ] {
            assert!(
                matches!(AvatarUrls::new(base, "db", SECRET), Err(UrlError::Base(_))),
                "{base}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(None), Ok(DEFAULT_SIZE));
        assert_eq!(parse_size(Some("1")), Ok(1));
        assert_eq!(parse_size(Some("2048")), Ok(2048));
        for bad in [
            "0",
            "2049",
            "-1",
            "+5",
            "",
            "64px",
            "1e3",
            "99999999999999999999",
            " 64",
        ] {
            assert!(
                matches!(parse_size(Some(bad)), Err(RequestError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn urls_write_the_served_size_and_may_name_a_format() {
        let urls = AvatarUrls::new("https://h.example", "db", SECRET).unwrap();
        let id = Uuid::nil();
        let sha1 = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(urls.url(id, sha1, 57), urls.url(id, sha1, 60));
        assert_eq!(urls.url(id, sha1, 57).query(), Some("s=60&v=a9993e364706"));
        assert_eq!(
            urls.url_as(id, sha1, 57, Format::Webp).query(),
            Some("s=60&v=a9993e364706&f=webp")
        );
        assert_eq!(parse_format(None), Ok(None));
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            assert_eq!(parse_format(Some(format.name())), Ok(Some(format)));
        }
        for bad in ["", "gif", "JPEG", "webp "] {
            assert!(
                matches!(parse_format(Some(bad)), Err(RequestError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn srcset_offers_each_density_quantised_and_capped() {
        let urls = AvatarUrls::new("https://cdn.example.com", "db", SECRET).unwrap();
        let id = Uuid::from_u128(7);
        let sha1 = "ab".repeat(20);
        let sizes = |css: u32| -> Vec<(u32, String)> {
            urls.srcset(id, &sha1, css)
                .split(", ")
                .map(|candidate| {
                    let (url, density) = candidate.split_once(' ').unwrap();
                    let url = Url::parse(url).unwrap();
                    let s = url.query_pairs().find(|(k, _)| k == "s").unwrap().1;
                    (s.parse().unwrap(), density.to_string())
                })
                .collect()
        };
        let d = |s: &str| s.to_string();
        for (css, expected) in [
            (64, vec![(64, d("1x")), (128, d("2x")), (200, d("3x"))]),
            (40, vec![(40, d("1x")), (80, d("2x")), (128, d("3x"))]),
            (1, vec![(1, d("1x")), (2, d("2x")), (4, d("3x"))]),
            (700, vec![(700, d("1x")), (1400, d("2x")), (2048, d("3x"))]),
            (1024, vec![(1024, d("1x")), (2048, d("2x"))]),
            (2048, vec![(2048, d("1x"))]),
            (9999, vec![(2048, d("1x"))]),
            (0, vec![(1, d("1x")), (2, d("2x")), (4, d("3x"))]),
        ] {
            assert_eq!(sizes(css), expected, "css {css}");
        }
    }

    #[test]
    fn img_puts_src_srcset_size_and_alt_together() {
        let urls = AvatarUrls::new("https://cdn.example.com", "db", SECRET).unwrap();
        let (id, sha1) = (Uuid::from_u128(7), "cd".repeat(20));
        let img = urls.img(id, &sha1, 48, "Ada & Grace");
        assert_eq!(img.src, urls.url(id, &sha1, 48).as_str());
        assert_eq!(img.srcset, urls.srcset(id, &sha1, 48));
        let html = img.to_string();
        assert!(
            html.starts_with("<img src=\"https://cdn.example.com/avatar/"),
            "{html}"
        );
        assert!(
            html.contains(r#"width="48" height="48" alt="Ada &amp; Grace">"#),
            "{html}"
        );
        assert!(
            !html.contains("&v="),
            "query separators are escaped: {html}"
        );
    }

    #[test]
    fn malformed_paths() {
        let key = database_key("db", SECRET);
        let id = "5b0f2f7e8e4c4f7a9b1d2a6c3e8f9d10";
        assert!(parse_path(&key, id).is_ok());
        for (k, i) in [
            ("short", id),
            (&key[..21], id),
            (&key, "5B0F2F7E8E4C4F7A9B1D2A6C3E8F9D10"),
            (&key, "5b0f2f7e-8e4c-4f7a-9b1d-2a6c3e8f9d10"),
            (&key, &id[..31]),
            (&key, "zz0f2f7e8e4c4f7a9b1d2a6c3e8f9d10"),
        ] {
            assert_eq!(parse_path(k, i), Err(RequestError::NotFound), "{k} {i}");
        }
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(
            id in any::<u128>(),
            name in "\\PC{0,40}",
            secret in proptest::collection::vec(any::<u8>(), MIN_SECRET_LEN..64),
            size in 1..=MAX_SIZE,
            sha1 in "[0-9a-f]{40}",
        ) {
            let urls = AvatarUrls::new("https://cdn.example.com/a/b", &name, &secret).unwrap();
            let id = Uuid::from_u128(id);
            let url = urls.url(id, &sha1, size);
            let segments: Vec<_> = url.path_segments().unwrap().collect();
            prop_assert_eq!(&segments[..3], &["a", "b", "avatar"]);
            let parsed = parse_path(segments[3], segments[4]).unwrap();
            prop_assert_eq!(parsed, AvatarPath { database_key: database_key(&name, &secret), id });
            let query: std::collections::HashMap<_, _> = url.query_pairs().collect();
            let served = avatar_contract::size::quantise(i64::from(size)).unwrap();
            prop_assert_eq!(parse_size(query.get("s").map(|s| s.as_ref())), Ok(served));
            prop_assert_eq!(query.get("v").map(|v| v.to_string()), Some(sha1[..VERSION_LEN].to_string()));
        }

        #[test]
        fn arbitrary_input_never_panics(key in "\\PC{0,64}", id in "\\PC{0,64}", size in "\\PC{0,24}") {
            let _ = parse_path(&key, &id);
            let _ = parse_size(Some(&size));
        }
    }
}
