//! The application's one error type, in axum's style: handlers return
//! `Result<_, AppError>`, and every failure becomes an answer here.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::pages;

/// Why an input was refused, as the person who sent it should read it:
/// pg_avatar's own message and hint (without its `pg_avatar: ` marker),
/// or the application's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            hint: None,
        }
    }
}

#[derive(Debug)]
pub enum AppError {
    /// The input was refused. A handler that can show its page again
    /// turns this into [`AppError::Refused`]; otherwise it is answered 422
    /// with the message on a page of its own.
    Invalid(Problem),
    /// The page again, with why the input was refused: 422.
    Refused(Html<String>),
    /// The upload is larger than the application reads.
    TooLarge(String),
    /// A request no page of this application sends (a form without its fields).
    BadRequest(String),
    NotFound,
    /// No database connection could be had in time.
    Unavailable,
    /// Logged here; the browser learns nothing more.
    Internal(String),
}

impl From<diesel_avatar::Error> for AppError {
    fn from(e: diesel_avatar::Error) -> Self {
        match e {
            diesel_avatar::Error::InvalidInput { message, hint } => {
                AppError::Invalid(Problem { message, hint })
            }
            diesel_avatar::Error::Database(e) => AppError::from(e),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => AppError::NotFound,
            // Bad input that diesel reports as an unknown error: classify it
            // the way diesel-avatar does, by pg_avatar's marker.
            diesel::result::Error::DatabaseError(..) => match diesel_avatar::Error::from(e) {
                diesel_avatar::Error::Database(e) => AppError::Internal(e.to_string()),
                invalid => AppError::from(invalid),
            },
            e => AppError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, problem) = match self {
            AppError::Refused(page) => {
                return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
            }
            AppError::Invalid(problem) => (StatusCode::UNPROCESSABLE_ENTITY, "Refused", problem),
            AppError::TooLarge(why) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                Problem::new(why),
            ),
            AppError::BadRequest(why) => {
                (StatusCode::BAD_REQUEST, "Bad request", Problem::new(why))
            }
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                Problem::new("There is no such page, or no such user."),
            ),
            AppError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                Problem::new("The database cannot be reached; try again shortly."),
            ),
            AppError::Internal(why) => {
                tracing::error!(error = %why, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    Problem::new("Something went wrong on the server; it has been logged."),
                )
            }
        };
        (status, Html(pages::error(title, &problem))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_input_is_422_and_database_failures_are_500() {
        let invalid = AppError::from(diesel_avatar::Error::InvalidInput {
            message: "image is corrupt".into(),
            hint: Some("upload it again".into()),
        });
        assert!(matches!(&invalid, AppError::Invalid(p) if p.message == "image is corrupt"));
        assert_eq!(
            invalid.into_response().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let failed = AppError::from(diesel_avatar::Error::Database(
            diesel::result::Error::BrokenTransactionManager,
        ));
        assert!(matches!(failed, AppError::Internal(_)));
        assert_eq!(
            failed.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            AppError::from(diesel::result::Error::NotFound)
                .into_response()
                .status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn a_marked_database_error_is_bad_input() {
        struct Info(&'static str);
        impl diesel::result::DatabaseErrorInformation for Info {
            fn message(&self) -> &str {
                self.0
            }
            fn details(&self) -> Option<&str> {
                None
            }
            fn hint(&self) -> Option<&str> {
                None
            }
            fn table_name(&self) -> Option<&str> {
                None
            }
            fn column_name(&self) -> Option<&str> {
                None
            }
            fn constraint_name(&self) -> Option<&str> {
                None
            }
            fn statement_position(&self) -> Option<i32> {
                None
            }
        }
        let error = |message| {
            AppError::from(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(Info(message)),
            ))
        };
        assert!(matches!(
            error("pg_avatar: 'x' is not an email address"),
            AppError::Invalid(p) if p.message == "'x' is not an email address"
        ));
        assert!(matches!(
            error("function avatar.nope() does not exist"),
            AppError::Internal(_)
        ));
    }
}
