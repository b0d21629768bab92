//! Errors as SQL errors with fitting SQLSTATEs. What the caller's input
//! caused carries the contract's marker, so clients that cannot see the
//! SQLSTATE still tell it from a failure.

use avatar_contract::INVALID_INPUT_MARKER;
use avatar_pipeline::{Class, Error};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub fn sqlstate(class: Class) -> PgSqlErrorCode {
    match class {
        Class::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        Class::InvalidBinary => PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
        Class::LimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
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

/// The report for bad input: `message` behind the contract's marker.
#[track_caller]
pub fn input_error(
    code: PgSqlErrorCode,
    message: impl std::fmt::Display,
    function: &'static str,
) -> ErrorReport {
    ErrorReport::new(code, format!("{INVALID_INPUT_MARKER}{message}"), function)
}

#[track_caller]
pub fn raise(error: Error, function: &'static str) -> ! {
    let class = error.class();
    let report = match class {
        Class::InvalidParameter | Class::InvalidBinary | Class::LimitExceeded => {
            input_error(sqlstate(class), &error, function)
        }
        Class::OutOfMemory | Class::Internal => {
            ErrorReport::new(sqlstate(class), error.to_string(), function)
        }
    };
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
            input_error(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("{argument} must not be NULL"),
                function,
            )
            .set_hint("To remove an avatar, call avatar.avatar_delete(resource)."),
        )
    })
}

#[track_caller]
pub fn invalid(message: impl std::fmt::Display, hint: &str, function: &'static str) -> ! {
    fail(
        input_error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            message,
            function,
        )
        .set_hint(hint),
    )
}
