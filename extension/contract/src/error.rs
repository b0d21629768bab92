//! How pg_avatar's errors are told apart: by class, each with its
//! SQLSTATE, and by a marker on every message the caller's input caused.

/// Every error pg_avatar raises because of its caller's input starts its
/// message with this, in Rust and in plpgsql alike; nothing else it raises
/// does. Clients that cannot see the SQLSTATE (diesel reports the ones it
/// does not know without it) tell bad input from failures by it.
pub const MARKER: &str = "pg_avatar: ";

/// The kinds of error, and what a caller should make of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request itself is wrong: a size, a format, a name.
    InvalidParameter,
    /// An argument that must be given was NULL.
    NullValue,
    /// The bytes do not decode as the image they claim to be.
    InvalidBinary,
    /// The input is over a configured limit.
    LimitExceeded,
    /// The statement asks for what pg_avatar does not do, such as
    /// truncating one partition of a table that owns avatars.
    Unsupported,
    /// The object is not in the state the call needs: a trigger on a
    /// table that is not attached.
    WrongState,
    /// A key column's type cannot name a resource.
    DatatypeMismatch,
    UndefinedTable,
    UndefinedColumn,
    /// Another table already holds the name.
    DuplicateObject,
    /// The role lacks a grant or ownership: the deployment's to fix, not
    /// the input's, so it carries no marker.
    InsufficientPrivilege,
    /// The machine is short of memory now: not the input's fault, and it
    /// may work later.
    OutOfMemory,
    /// A bug or an encoder failure: not the caller's fault.
    Internal,
}

impl Class {
    pub const ALL: [Class; 13] = [
        Class::InvalidParameter,
        Class::NullValue,
        Class::InvalidBinary,
        Class::LimitExceeded,
        Class::Unsupported,
        Class::WrongState,
        Class::DatatypeMismatch,
        Class::UndefinedTable,
        Class::UndefinedColumn,
        Class::DuplicateObject,
        Class::InsufficientPrivilege,
        Class::OutOfMemory,
        Class::Internal,
    ];

    pub fn sqlstate(self) -> &'static str {
        match self {
            Class::InvalidParameter => "22023",
            Class::NullValue => "22004",
            Class::InvalidBinary => "22P03",
            Class::LimitExceeded => "54000",
            Class::Unsupported => "0A000",
            Class::WrongState => "55000",
            Class::DatatypeMismatch => "42804",
            Class::UndefinedTable => "42P01",
            Class::UndefinedColumn => "42703",
            Class::DuplicateObject => "42710",
            Class::InsufficientPrivilege => "42501",
            Class::OutOfMemory => "53200",
            Class::Internal => "XX000",
        }
    }

    pub fn from_sqlstate(code: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.sqlstate() == code)
    }

    /// Whether the caller's input caused it: an HTTP 400, not a 500. Its
    /// message carries [`MARKER`].
    pub fn is_invalid_input(self) -> bool {
        !matches!(
            self,
            Class::InsufficientPrivilege | Class::OutOfMemory | Class::Internal
        )
    }
}

/// `message` as raised for invalid input.
pub fn mark(message: impl std::fmt::Display) -> String {
    format!("{MARKER}{message}")
}

/// The message without its marker, if it is one of invalid input.
pub fn unmark(message: &str) -> Option<&str> {
    message.strip_prefix(MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_their_sqlstates() {
        for class in Class::ALL {
            assert_eq!(Class::from_sqlstate(class.sqlstate()), Some(class));
        }
        assert_eq!(Class::from_sqlstate("40001"), None);
        assert!(!Class::InsufficientPrivilege.is_invalid_input());
        assert_eq!(unmark(&mark("x")), Some("x"));
        assert_eq!(unmark("SPI failed in pg_avatar: x"), None);
    }
}
