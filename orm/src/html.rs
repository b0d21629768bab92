//! An `<img>` element for an avatar: `src`, `srcset`, `width`, `height`
//! and `alt` together, each attribute escaped, so a template needs no
//! helper of its own and cannot forget one of them.

use std::fmt;

/// Write it with `{}` (or `to_string()`) into HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Img {
    pub src: String,
    pub srcset: String,
    /// CSS pixels: the size it is laid out at, whichever density is fetched.
    pub side: u32,
    pub alt: String,
}

impl fmt::Display for Img {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"<img src="{}" srcset="{}" width="{side}" height="{side}" alt="{}">"#,
            Escaped(&self.src),
            Escaped(&self.srcset),
            Escaped(&self.alt),
            side = self.side,
        )
    }
}

/// Text made safe inside a double-quoted attribute or an element.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        for (raw, escaped) in [
            ("", ""),
            ("plain", "plain"),
            ("a&b", "a&amp;b"),
            (r#""><script>"#, "&quot;&gt;&lt;script&gt;"),
            ("it's", "it&#39;s"),
            ("émile & 李", "émile &amp; 李"),
        ] {
            assert_eq!(Escaped(raw).to_string(), escaped, "{raw:?}");
        }
    }

    #[test]
    fn an_img_has_every_attribute_escaped() {
        let img = Img {
            src: "https://x/a?s=64&v=1".into(),
            srcset: "https://x/a?s=64&v=1 1x, https://x/a?s=128&v=1 2x".into(),
            side: 64,
            alt: r#"Ada "the first" <programmer>"#.into(),
        };
        assert_eq!(
            img.to_string(),
            r#"<img src="https://x/a?s=64&amp;v=1" srcset="https://x/a?s=64&amp;v=1 1x, https://x/a?s=128&amp;v=1 2x" width="64" height="64" alt="Ada &quot;the first&quot; &lt;programmer&gt;">"#
        );
    }
}
