//! The route's one error type: every error answer is built here, with the
//! same headers, and nothing about the database leaks into it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::store::FetchError;

#[derive(Debug)]
pub enum HttpError {
    BadRequest(String),
    /// An unknown database, an unknown id and a malformed path look the
    /// same, so answers reveal nothing about which databases or ids exist.
    NotFound,
    /// The route answers `GET` and `HEAD` only.
    MethodNotAllowed,
    /// The database is unreachable: try again shortly.
    Unavailable,
    /// Logged where it happened; the client learns nothing more.
    Internal,
}

impl HttpError {
    /// Logs a database failure of the database `key` names (never its
    /// name or URL) and says how to answer it.
    pub fn fetch_failed(database_key: &str, error: FetchError) -> HttpError {
        match error {
            FetchError::Unavailable => {
                tracing::warn!(database = %database_key, "database unavailable");
                HttpError::Unavailable
            }
            FetchError::Failed(e) => {
                tracing::error!(database = %database_key, error = %e, "avatar query failed");
                HttpError::Internal
            }
        }
    }
}

/// What every answer carries, images and errors alike.
pub fn common_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            HttpError::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            HttpError::NotFound => (StatusCode::NOT_FOUND, "no such avatar".into()),
            HttpError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD".into())
            }
            HttpError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable, try again shortly".into(),
            ),
            HttpError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
        };
        let mut response = (status, format!("{text}\n")).into_response();
        let h = response.headers_mut();
        common_headers(h);
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}

/// Runs the database work `work` on a blocking thread: a panic there is
/// an internal error, logged, rather than a dropped connection.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(work).await.map_err(|join| {
        tracing::error!(error = %join, "avatar worker panicked");
        HttpError::Internal
    })
}

impl From<diesel_avatar::urls::RequestError> for HttpError {
    fn from(e: diesel_avatar::urls::RequestError) -> Self {
        match e {
            diesel_avatar::urls::RequestError::BadRequest(why) => HttpError::BadRequest(why),
            diesel_avatar::urls::RequestError::NotFound => HttpError::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_answer_has_the_same_headers() {
        for error in [
            HttpError::BadRequest("bad size".into()),
            HttpError::NotFound,
            HttpError::MethodNotAllowed,
            HttpError::Unavailable,
            HttpError::Internal,
        ] {
            let response = error.into_response();
            let h = response.headers();
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
            assert_eq!(h[header::CACHE_CONTROL], "no-store");
        }
    }
}
