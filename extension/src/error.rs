//! Errors as SQL errors, by the contract's classes. What the caller's
//! input caused carries the contract's marker, so clients that cannot see
//! the SQLSTATE still tell it from a failure.

use avatar_contract::error::{mark, Class};
use avatar_pipeline::Error;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// pgrx's code for a class; `sql_tests` checks each against
/// [`Class::sqlstate`].
pub fn sqlstate(class: Class) -> PgSqlErrorCode {
    match class {
        Class::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        Class::NullValue => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        Class::InvalidBinary => PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
        Class::LimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        Class::Unsupported => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        Class::WrongState => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        Class::DatatypeMismatch => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        Class::UndefinedTable => PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
        Class::UndefinedColumn => PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        Class::DuplicateObject => PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
        Class::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        Class::OutOfMemory => PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        Class::Internal => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
    }
}

/// Raises `report` as an ERROR; the transaction aborts, so nothing is written.
pub fn fail(report: ErrorReport) -> ! {
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// A statement of pg_avatar's own failed: not the caller's fault, so
/// without the contract's input marker.
pub fn spi_failed(e: pgrx::spi::SpiError) -> ! {
    pgrx::error!("SPI failed in pg_avatar: {e}")
}

/// The report for an error of `class`: behind the contract's marker when
/// the caller's input caused it.
#[track_caller]
pub fn report(
    class: Class,
    message: impl std::fmt::Display,
    function: &'static str,
) -> ErrorReport {
    let message = if class.is_invalid_input() {
        mark(message)
    } else {
        message.to_string()
    };
    ErrorReport::new(sqlstate(class), message, function)
}

#[track_caller]
pub fn raise(error: Error, function: &'static str) -> ! {
    let report = report(error.class(), &error, function);
    fail(match error.hint() {
        Some(hint) => report.set_hint(hint),
        None => report,
    })
}

/// For the arguments whose NULL is a mistake rather than "no answer".
#[track_caller]
pub fn required<T>(value: Option<T>, argument: &str, function: &'static str) -> T {
    value.unwrap_or_else(|| {
        fail(
            report(
                Class::NullValue,
                format!("{argument} must not be NULL"),
                function,
            )
            .set_hint("To remove an avatar, call avatar.avatar_delete(resource)."),
        )
    })
}

#[track_caller]
pub fn invalid(message: impl std::fmt::Display, hint: &str, function: &'static str) -> ! {
    fail(report(Class::InvalidParameter, message, function).set_hint(hint))
}
