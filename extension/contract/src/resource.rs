//! Resources: the text that names the owner of an avatar.
//!
//! The convention is the owner's table, then each key part, joined by
//! commas (`users,42`). Inside a part, `%` and `,` are written `%25` and
//! `%2C`, so every key has exactly one resource and no two keys share one.
//! `avatar.attach`'s trigger and diesel-avatar's derive both name rows
//! with [`encode`].

use std::fmt;

/// The longest resource, in bytes (a `CHECK` on every table that holds one).
pub const MAX_BYTES: usize = 1024;

/// Resources of the Libravatar fallback's copies: `libravatar:<sha256>`.
/// Nothing else may write under it.
pub const FALLBACK_PREFIX: &str = "libravatar:";

/// The resource of a row of `table` whose key parts are `parts`.
pub fn encode<I>(table: &str, parts: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut out = String::from(table);
    for part in parts {
        push_part(&mut out, part.as_ref());
    }
    out
}

/// [`encode`], for keys read inside the database: `None`, without building
/// it, when the resource would be longer than [`MAX_BYTES`]. No caller may
/// write such a resource, so it names no avatar; and a key of any length
/// costs at most [`MAX_BYTES`] of memory.
pub fn encode_stored<I>(table: &str, parts: I) -> Option<String>
where
    I: IntoIterator + Clone,
    I::Item: AsRef<str>,
{
    let mut len = table.len();
    if len > MAX_BYTES {
        return None;
    }
    for part in parts.clone() {
        len = len.saturating_add(1 + escaped_len(part.as_ref()));
        if len > MAX_BYTES {
            return None;
        }
    }
    let mut out = String::with_capacity(len);
    out.push_str(table);
    for part in parts {
        push_part(&mut out, part.as_ref());
    }
    Some(out)
}

fn escaped_len(part: &str) -> usize {
    part.len() + 2 * part.bytes().filter(|b| matches!(b, b'%' | b',')).count()
}

fn push_part(out: &mut String, part: &str) {
    out.push(',');
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
}

/// Why a resource cannot be written by a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Blank,
    TooLong,
    /// Under [`FALLBACK_PREFIX`].
    Reserved,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Blank | Refused::TooLong => {
                write!(
                    f,
                    "resource must be 1 to {MAX_BYTES} bytes of non-blank text"
                )
            }
            Refused::Reserved => write!(
                f,
                "resources starting with {FALLBACK_PREFIX:?} belong to the Libravatar fallback"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// Whether a caller may name `resource`: what `avatar_set` and
/// `avatar_set_email` accept.
pub fn check(resource: &str) -> Result<(), Refused> {
    if resource.trim().is_empty() {
        Err(Refused::Blank)
    } else if resource.len() > MAX_BYTES {
        Err(Refused::TooLong)
    } else if resource.starts_with(FALLBACK_PREFIX) {
        Err(Refused::Reserved)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_escaped_so_keys_never_collide() {
        assert_eq!(encode("users", ["42"]), "users,42");
        assert_eq!(encode("members", ["a,b", "50%"]), "members,a%2Cb,50%25");
        assert_eq!(encode("members", ["a", "b,50%"]), "members,a,b%2C50%25");
        assert_ne!(encode("m", ["a,b", "c"]), encode("m", ["a", "b,c"]));
        assert_eq!(encode("t", [""; 0]), "t");
    }

    #[test]
    fn stored_keys_are_encoded_alike_or_not_at_all() {
        for parts in [vec!["42"], vec!["a,b", "50%"], vec![""], vec![]] {
            assert_eq!(
                encode_stored("t", parts.iter()),
                Some(encode("t", parts.iter()))
            );
        }
        let longest = "x".repeat(MAX_BYTES - 2);
        assert_eq!(
            encode_stored("t", [&longest]).map(|r| r.len()),
            Some(MAX_BYTES)
        );
        let over = "x".repeat(MAX_BYTES - 1);
        assert_eq!(encode_stored("t", [&over]), None);
        let commas = ",".repeat(MAX_BYTES / 3);
        assert_eq!(encode_stored("t", [&commas]), None, "escapes count");
        assert_eq!(encode_stored("t", [&"x".repeat(100 << 20)]), None);
        let long_table = "t".repeat(MAX_BYTES + 1);
        assert_eq!(
            encode_stored(&long_table, [""; 0]),
            None,
            "the table counts too"
        );
        assert_eq!(encode_stored(&long_table, ["1"]), None);
    }

    #[test]
    fn callers_may_not_write_blank_long_or_reserved_resources() {
        assert_eq!(check("users,1"), Ok(()));
        assert_eq!(check(" \t"), Err(Refused::Blank));
        assert_eq!(check(&"x".repeat(MAX_BYTES)), Ok(()));
        assert_eq!(check(&"x".repeat(MAX_BYTES + 1)), Err(Refused::TooLong));
        assert_eq!(check("libravatar:00"), Err(Refused::Reserved));
        assert_eq!(check("libravatar,00"), Ok(()), "a table called libravatar");
    }
}
