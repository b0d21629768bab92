//! Content ratings, as Gravatar and Libravatar name them: `g` (any
//! audience), `pg`, `r` and `x`, in that order. Every avatar has one; a
//! Libravatar request names the highest it accepts (`r=`, `g` when absent).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Rating {
    #[default]
    G,
    Pg,
    R,
    X,
}

impl Rating {
    /// Mildest first: a request for one accepts it and those before it.
    pub const ALL: [Rating; 4] = [Rating::G, Rating::Pg, Rating::R, Rating::X];

    /// The name stored in `avatar.avatar.rating` and used in `r=`.
    pub fn name(self) -> &'static str {
        match self {
            Rating::G => "g",
            Rating::Pg => "pg",
            Rating::R => "r",
            Rating::X => "x",
        }
    }

    /// A stored or SQL name, exactly as [`Rating::name`] spells it.
    pub fn parse(name: &str) -> Option<Rating> {
        Rating::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether a request accepting up to `accepted` may see this.
    pub fn allowed_by(self, accepted: Rating) -> bool {
        self <= accepted
    }

    /// "'g', 'pg', 'r' or 'x'": for hints.
    pub fn sql_list() -> String {
        let quoted: Vec<String> = Rating::ALL
            .iter()
            .map(|r| format!("'{}'", r.name()))
            .collect();
        let (last, rest) = quoted.split_last().expect("four ratings");
        format!("{} or {last}", rest.join(", "))
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_order() {
        for r in Rating::ALL {
            assert_eq!(Rating::parse(r.name()), Some(r));
        }
        assert!(Rating::ALL.windows(2).all(|w| w[0] < w[1]));
        for bad in ["", "G", "nc-17", " g", "pg13"] {
            assert_eq!(Rating::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Rating::default(), Rating::G);
        assert_eq!(Rating::sql_list(), "'g', 'pg', 'r' or 'x'");
    }

    #[test]
    fn a_request_accepts_its_rating_and_milder() {
        assert!(Rating::G.allowed_by(Rating::G));
        assert!(Rating::Pg.allowed_by(Rating::R));
        assert!(!Rating::R.allowed_by(Rating::Pg));
        assert!(!Rating::X.allowed_by(Rating::G));
    }
}
