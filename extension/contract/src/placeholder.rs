//! The generated avatars: their kinds, the names that ask for them, and
//! the format each is served in.

use crate::format::Format;

/// A kind of generated image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A grey silhouette, the same for everyone.
    Silhouette,
    /// A 5x5 mirrored pattern in one colour.
    Identicon,
    /// An 8x8 mirrored pattern in three colours.
    Retro,
    /// Fully transparent.
    Blank,
    /// The first letter of the seed (a name), white on a colour from its
    /// hash, as Tryton's avatar mixin draws it.
    Initial,
    /// One flat colour from the seed's hash: Gravatar's `d=color`.
    Color,
}

/// Every name `avatar_default(kind, …)` and Libravatar's `d=` accept, and
/// the kind each draws. `monsterid`, `robohash`, `pagan` and `wavatar` are
/// drawn from artwork pg_avatar does not ship; they get the retro pattern,
/// which is as distinct per address. `initial` is pg_avatar's own name;
/// `initials` is Gravatar's, which the Libravatar route draws only for a
/// request that names the person (`name=` or `initials=`), since an
/// address digest has no letters.
pub const NAMES: [(&str, Kind); 12] = [
    ("mm", Kind::Silhouette),
    ("mp", Kind::Silhouette),
    ("identicon", Kind::Identicon),
    ("retro", Kind::Retro),
    ("monsterid", Kind::Retro),
    ("robohash", Kind::Retro),
    ("pagan", Kind::Retro),
    ("wavatar", Kind::Retro),
    ("blank", Kind::Blank),
    ("initial", Kind::Initial),
    ("initials", Kind::Initial),
    ("color", Kind::Color),
];

impl Kind {
    /// The kind `name` asks for, exactly as spelt in [`NAMES`].
    pub fn parse(name: &str) -> Option<Kind> {
        NAMES.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
    }

    /// The name a `d=` query uses for this kind ([`NAMES`]' first).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|&(n, _)| n)
            .expect("every kind has a name")
    }

    /// PNG for the one kind that needs transparency, JPEG otherwise.
    pub fn format(self) -> Format {
        match self {
            Kind::Blank => Format::Png,
            _ => Format::Jpeg,
        }
    }

    /// Whether the image depends on its seed.
    pub fn seeded(self) -> bool {
        !matches!(self, Kind::Silhouette | Kind::Blank)
    }

    /// Whether a Libravatar `d=` may draw it from the address digest
    /// alone: initials need the person's name too.
    pub fn libravatar(self) -> bool {
        self != Kind::Initial
    }
}

/// "initial, mm, mp, …": for hints.
pub fn names() -> String {
    let mut names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
    names.sort_by_key(|n| *n != "initial");
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_its_kind() {
        for (name, kind) in NAMES {
            assert_eq!(Kind::parse(name), Some(kind));
            assert_eq!(Kind::parse(kind.name()), Some(kind));
        }
        assert_eq!(Kind::parse("wavatar"), Some(Kind::Retro));
        assert_eq!(Kind::parse("initials"), Some(Kind::Initial));
        assert_eq!(Kind::parse("color"), Some(Kind::Color));
        assert_eq!(Kind::parse("MM"), None);
        assert_eq!(Kind::Blank.format(), Format::Png);
        assert!(names().starts_with("initial, mm, mp, identicon"));
    }
}
