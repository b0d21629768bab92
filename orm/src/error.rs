use std::fmt;

use avatar_contract::error::unmark;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong, split the way an application answers: the caller's
/// upload (HTTP 400) versus the database (HTTP 500 or 503).
#[derive(Debug)]
pub enum Error {
    /// pg_avatar rejected the input: not an image, corrupt, over a limit,
    /// or a size out of range. `message` and `hint` are the server's.
    InvalidInput {
        message: String,
        hint: Option<String>,
    },
    /// Anything else: connection, permissions, a bug.
    Database(DieselError),
}

impl Error {
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput { .. })
    }
}

impl From<DieselError> for Error {
    /// diesel reports the SQLSTATEs of bad input (the contract's classes
    /// whose `is_invalid_input` holds) only as `DatabaseErrorKind::Unknown`,
    /// so the contract's marker, which pg_avatar puts on every such message
    /// and no other, is the signal. The message is kept without it.
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
                match unmark(info.message()) {
                    Some(message) => Error::InvalidInput {
                        message: message.to_string(),
                        hint: info.hint().map(str::to_string),
                    },
                    None => Error::Database(e),
                }
            }
            _ => Error::Database(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput {
                message,
                hint: Some(hint),
            } => write!(f, "{message} ({hint})"),
            Error::InvalidInput {
                message,
                hint: None,
            } => f.write_str(message),
            Error::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Database(e) => Some(e),
            Error::InvalidInput { .. } => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
