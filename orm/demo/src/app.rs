//! The routes: the application's pages, and pg-avatar-server's router
//! (public avatar URLs and the Libravatar route) in the same process.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_avatar::{AvatarUrls, Crop, Rating};
use serde::Deserialize;

use crate::db::{self, Saved, Upload};
use crate::error::{AppError, Problem};
use crate::pages;

pub type DbPool = Pool<ConnectionManager<PgConnection>>;

/// Uploads up to pg_avatar's default `max_input_bytes` (16 MiB) reach
/// the extension, which refuses what is over its own limit with its own
/// message; the form around the file gets another MiB.
pub const MAX_BODY_BYTES: usize =
    diesel_avatar::contract::limits::DEFAULT_MAX_INPUT_BYTES + (1 << 20);

const SCRIPT: &str = include_str!("../static/demo.js");
const STYLE: &str = include_str!("../static/demo.css");

pub struct App {
    pub pool: DbPool,
    pub urls: AvatarUrls,
    /// Where browsers reach this server, e.g. `http://127.0.0.1:8090`.
    pub base: String,
}

impl App {
    /// Runs `work` on a pooled connection, on a blocking thread.
    async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut PgConnection, &App) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = app.pool.get().map_err(|_| AppError::Unavailable)?;
            work(&mut conn, &app)
        })
        .await
        .map_err(|e| AppError::Internal(format!("worker panicked: {e}")))?
    }

    /// The user page, as the answer to a request it refused: the form
    /// again, with pg_avatar's (or the application's) message, as 422.
    async fn refused(self: &Arc<Self>, id: i32, problem: Problem, email: String) -> AppError {
        let page = self
            .user_page(id, UserQuery::default(), None, Some(problem), email)
            .await;
        match page {
            Ok(page) => AppError::Refused(page),
            Err(e) => e,
        }
    }

    async fn user_page(
        self: &Arc<Self>,
        id: i32,
        query: UserQuery,
        notice: Option<&'static str>,
        problem: Option<Problem>,
        email: String,
    ) -> Result<Html<String>, AppError> {
        self.db(move |conn, app| {
            let user = db::find_user(conn, id)?;
            let avatar = db::avatar_view(conn, &user, &app.urls)?;
            let libravatar = query.libravatar.filter(|d| is_md5(d));
            let placeholder = query
                .placeholder
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| user.name.clone());
            Ok(Html(pages::user(&pages::UserPage {
                user: &user,
                avatar: avatar.as_ref(),
                base: &app.base,
                libravatar: libravatar.as_deref(),
                placeholder: &placeholder,
                notice,
                problem: problem.as_ref(),
                email: &email,
            })))
        })
        .await
    }
}

fn is_md5(digest: &str) -> bool {
    digest.len() == 32
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The application's routes merged with pg-avatar-server's `avatars`.
pub fn router(app: Arc<App>, avatars: Router) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/users", post(create_user))
        .route("/users/{id}", get(show_user))
        .route("/users/{id}/avatar", post(upload_avatar))
        .route("/users/{id}/email", post(set_email))
        .route("/users/{id}/delete", post(delete_user))
        .route(
            "/static/demo.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/static/demo.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
        .merge(avatars)
        .fallback(|| async { AppError::NotFound })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn index(State(app): State<Arc<App>>) -> Result<Html<String>, AppError> {
    app.db(|conn, app| {
        let users = db::list_users(conn, &app.urls)?;
        Ok(Html(pages::index(&users, &app.base, None, "")))
    })
    .await
}

#[derive(Deserialize)]
struct NewUser {
    #[serde(default)]
    name: String,
}

async fn create_user(
    State(app): State<Arc<App>>,
    Form(form): Form<NewUser>,
) -> Result<Redirect, AppError> {
    let name = form.name.clone();
    match app.db(move |conn, _| db::create_user(conn, &name)).await {
        Ok(user) => Ok(Redirect::to(&format!("/users/{}", user.id))),
        Err(AppError::Invalid(problem)) => Err(app
            .db(move |conn, app| {
                let users = db::list_users(conn, &app.urls)?;
                Ok(AppError::Refused(Html(pages::index(
                    &users,
                    &app.base,
                    Some(&problem),
                    &form.name,
                ))))
            })
            .await
            .unwrap_or_else(|e| e)),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
struct UserQuery {
    /// The MD5 of the address just set, to show its Libravatar URL.
    libravatar: Option<String>,
    /// A name to draw the placeholder of.
    placeholder: Option<String>,
    /// What was just done.
    done: Option<String>,
}

async fn show_user(
    State(app): State<Arc<App>>,
    Path(id): Path<i32>,
    Query(query): Query<UserQuery>,
) -> Result<Html<String>, AppError> {
    // Fixed texts only: nothing in the URL is echoed as a notice.
    let notice = match query.done.as_deref() {
        Some("saved") => Some("Saved."),
        Some("details") => Some("Rating and description saved."),
        Some("address") => Some("Address set: the Libravatar route now answers for it."),
        _ => None,
    };
    app.user_page(id, query, notice, None, String::new()).await
}

async fn upload_avatar(
    State(app): State<Arc<App>>,
    Path(id): Path<i32>,
    multipart: Multipart,
) -> Result<Redirect, AppError> {
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err(AppError::Invalid(problem)) => {
            return Err(app.refused(id, problem, String::new()).await)
        }
        Err(e) => return Err(e),
    };
    let saved = app
        .db(move |conn, _| {
            let user = db::find_user(conn, id)?;
            db::save_avatar(conn, &user, &upload)
        })
        .await;
    match saved {
        Ok(saved) => {
            let done = match saved {
                Saved::Picture => "saved",
                Saved::Details => "details",
            };
            Ok(Redirect::to(&format!("/users/{id}?done={done}#avatar")))
        }
        Err(AppError::Invalid(problem)) => Err(app.refused(id, problem, String::new()).await),
        Err(e) => Err(e),
    }
}

/// Reads the upload form: the file, the crop square's three numbers, the
/// rating and the description.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, AppError> {
    let mut upload = Upload::default();
    let mut text: HashMap<String, String> = HashMap::new();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        if name == "picture" {
            // A file input with nothing chosen sends an empty part without a name.
            let chosen = field.file_name().is_some_and(|f| !f.is_empty());
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if chosen {
                upload.picture = Some(bytes.to_vec());
            }
        } else {
            let value = field.text().await.map_err(multipart_error)?;
            text.insert(name, value);
        }
    }
    let get = |name: &str| text.get(name).map(String::as_str).unwrap_or("");
    upload.crop = parse_crop(get("crop_x"), get("crop_y"), get("crop_size"))?;
    upload.rating = parse_rating(get("rating"))?;
    upload.description = text.get("description").cloned();
    Ok(upload)
}

fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge(format!(
            "The upload is over {} MiB, more than this application reads.",
            MAX_BODY_BYTES >> 20
        ))
    } else {
        AppError::BadRequest(e.body_text())
    }
}

/// The crop square's fields: all empty (no crop: the centre square), or
/// three integers, which pg_avatar checks against the upright image.
pub fn parse_crop(x: &str, y: &str, size: &str) -> Result<Option<Crop>, AppError> {
    let number = |name: &str, v: &str| -> Result<Option<i32>, AppError> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| {
            AppError::Invalid(Problem::new(format!(
                "{name} must be a whole number of pixels, not {:?}",
                v.chars().take(20).collect::<String>()
            )))
        })
    };
    Crop::from_sql(
        number("crop_x", x)?,
        number("crop_y", y)?,
        number("crop_size", size)?,
    )
    .map_err(|e| AppError::Invalid(Problem::new(e.to_string())))
}

fn parse_rating(name: &str) -> Result<Option<Rating>, AppError> {
    if name.is_empty() {
        return Ok(None);
    }
    Rating::parse(name).map(Some).ok_or_else(|| {
        AppError::Invalid(Problem::new(format!(
            "the rating must be {}",
            Rating::sql_list()
        )))
    })
}

#[derive(Deserialize)]
struct Address {
    #[serde(default)]
    email: String,
}

async fn set_email(
    State(app): State<Arc<App>>,
    Path(id): Path<i32>,
    Form(form): Form<Address>,
) -> Result<Redirect, AppError> {
    let email = form.email.clone();
    let set = app
        .db(move |conn, _| {
            let user = db::find_user(conn, id)?;
            db::set_email(conn, &user, &email)
        })
        .await;
    match set {
        Ok(md5) => Ok(Redirect::to(&format!(
            "/users/{id}?done=address&libravatar={md5}#libravatar"
        ))),
        Err(AppError::Invalid(problem)) => Err(app.refused(id, problem, form.email).await),
        Err(e) => Err(e),
    }
}

async fn delete_user(
    State(app): State<Arc<App>>,
    Path(id): Path<i32>,
) -> Result<Redirect, AppError> {
    if app.db(move |conn, _| db::delete_user(conn, id)).await? {
        Ok(Redirect::to("/"))
    } else {
        Err(AppError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crop_is_three_numbers_or_none() {
        assert_eq!(parse_crop("", "", "").unwrap(), None);
        assert_eq!(
            parse_crop("10", " 20", "30 ").unwrap(),
            Some(Crop {
                x: 10,
                y: 20,
                size: 30
            })
        );
        for (x, y, size) in [
            ("1", "", ""),
            ("a", "1", "1"),
            ("-1", "0", "5"),
            ("1.5", "0", "5"),
        ] {
            assert!(
                matches!(parse_crop(x, y, size), Err(AppError::Invalid(_))),
                "{x} {y} {size}"
            );
        }
    }

    #[test]
    fn ratings_are_the_four_names_or_nothing() {
        assert_eq!(parse_rating("").unwrap(), None);
        assert_eq!(parse_rating("pg").unwrap(), Some(Rating::Pg));
        assert!(matches!(parse_rating("PG"), Err(AppError::Invalid(_))));
    }

    #[test]
    fn only_md5_digests_are_shown_as_libravatar_urls() {
        assert!(is_md5("0bc83cb571cd1c50ba6f3e8a78ef1346"));
        assert!(!is_md5("0BC83CB571CD1C50BA6F3E8A78EF1346"));
        assert!(!is_md5("\"><script>"));
    }
}
