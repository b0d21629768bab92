//! Which format an HTTP client gets, from its `Accept` header.

use avatar_contract::Format;

/// In the order ties are broken: WebP is the smallest, PNG the largest.
const PREFERENCE: [Format; 3] = [Format::Webp, Format::Jpeg, Format::Png];

/// The format to answer a request with `Accept: accept` (RFC 9110
/// §12.5.1), by quality value. PNG and WebP count only when named: `*/*`
/// and `image/*` promise nothing about a client's decoders, so they mean
/// JPEG, which every client can show. Ties go to the smaller file.
/// Requests that accept none of the three also get JPEG, rather than a 406
/// in place of a picture.
pub fn from_accept(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Jpeg;
    };
    let ranges: Vec<(&str, f32)> = accept.split(',').filter_map(media_range).collect();
    let named = |mime: &str| {
        ranges
            .iter()
            .find(|r| r.0.eq_ignore_ascii_case(mime))
            .map(|r| r.1)
    };
    let quality = |format: Format| -> f32 {
        let wildcard = || {
            let images = ranges.iter().find(|r| r.0.eq_ignore_ascii_case("image/*"));
            images
                .or_else(|| ranges.iter().find(|r| r.0 == "*/*"))
                .map(|r| r.1)
        };
        match format {
            Format::Jpeg => named(format.mime_type()).or_else(wildcard),
            _ => named(format.mime_type()),
        }
        .unwrap_or(0.0)
    };
    let mut best = (Format::Jpeg, 0.0);
    for format in PREFERENCE {
        let q = quality(format);
        if q > best.1 {
            best = (format, q);
        }
    }
    best.0
}

/// `type/subtype` and its `q` (1 when absent; 0 when malformed, so that a
/// garbled range never wins).
fn media_range(item: &str) -> Option<(&str, f32)> {
    let mut parts = item.split(';');
    let range = parts.next()?.trim();
    if range.is_empty() {
        return None;
    }
    let mut q = 1.0;
    for param in parts {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("q") {
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
    }
    Some((range, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_a_format() {
        let cases = [
            (None, Format::Jpeg),
            (Some(""), Format::Jpeg),
            (Some("*/*"), Format::Jpeg),
            (Some("image/*"), Format::Jpeg),
            (Some("image/jpeg"), Format::Jpeg),
            (Some("image/png"), Format::Png),
            (Some("image/webp"), Format::Webp),
            (Some("text/html"), Format::Jpeg),
            // What browsers send for an <img>.
            (
                Some("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"),
                Format::Webp,
            ),
            (Some("image/png,image/*;q=0.8,*/*;q=0.5"), Format::Png),
            (Some("image/png, image/jpeg"), Format::Jpeg),
            (Some("image/png;q=1, image/jpeg;q=0.9"), Format::Png),
            (Some("image/webp;q=0, image/*"), Format::Jpeg),
            (
                Some("image/webp;q=0, image/jpeg;q=0, image/png;q=0.1"),
                Format::Png,
            ),
            (Some("IMAGE/PNG"), Format::Png),
            (Some("image/png;q=oops, image/jpeg;q=0.2"), Format::Jpeg),
            (Some("image/png;q=7"), Format::Jpeg),
            (Some("image/webp;q=0.5, */*"), Format::Jpeg),
            (Some("image/webp, */*;q=0.1"), Format::Webp),
            (Some(",,;,"), Format::Jpeg),
        ];
        for (accept, expected) in cases {
            assert_eq!(from_accept(accept), expected, "{accept:?}");
        }
    }
}
