//! The formats: what a rendition is served in, and what an upload may be.

/// A rendition's format, as `avatar.avatar_get(id, size, format)` and the
/// cache table's `CHECK` name it. JPEG is what masters are stored in and
/// what every client accepts; PNG is the format XEP-0084 requires; WebP is
/// about a quarter smaller than JPEG at the same quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Format {
    #[default]
    Jpeg,
    Png,
    Webp,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Jpeg, Format::Png, Format::Webp];

    /// The format named `name`, exactly as SQL spells it.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }

    /// The format a file-name extension names (`jpg`, `jpeg`, `png`,
    /// `webp`, in any case), as Gravatar's URL suffixes do.
    pub fn from_extension(extension: &str) -> Option<Format> {
        let extension = extension.to_ascii_lowercase();
        match extension.as_str() {
            "jpg" => Some(Format::Jpeg),
            other => Format::parse(other),
        }
    }

    /// `'jpeg', 'png', 'webp'`: the list as SQL's `IN (…)` writes it.
    pub fn sql_list() -> String {
        Format::ALL.map(|f| format!("'{}'", f.name())).join(", ")
    }
}

/// What an upload may be. The decoder dispatches on this, and the hint of
/// every "not an image" error lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
}

impl Upload {
    pub const ALL: [Upload; 5] = [
        Upload::Jpeg,
        Upload::Png,
        Upload::Webp,
        Upload::Gif,
        Upload::Bmp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Upload::Jpeg => "JPEG",
            Upload::Png => "PNG",
            Upload::Webp => "WebP",
            Upload::Gif => "GIF",
            Upload::Bmp => "BMP",
        }
    }

    /// "JPEG, PNG, WebP, GIF and BMP".
    pub fn list() -> String {
        let names = Upload::ALL.map(Upload::name);
        let (last, rest) = names.split_last().expect("not empty");
        format!("{} and {last}", rest.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()), Some(format));
            assert!(format.mime_type().ends_with(format.name()));
        }
        assert_eq!(Format::parse("JPEG"), None, "names are exact");
        assert_eq!(Format::parse("gif"), None);
        assert_eq!(Format::sql_list(), "'jpeg', 'png', 'webp'");
        for (extension, format) in [
            ("jpg", Some(Format::Jpeg)),
            ("JPEG", Some(Format::Jpeg)),
            ("png", Some(Format::Png)),
            ("WebP", Some(Format::Webp)),
            ("gif", None),
            ("", None),
        ] {
            assert_eq!(Format::from_extension(extension), format, "{extension}");
        }
        assert_eq!(Upload::list(), "JPEG, PNG, WebP, GIF and BMP");
    }
}
