//! The pages, rendered on the server. Every piece of dynamic text goes
//! through [`Escaped`]; the `<img>`s of avatars come from diesel-avatar,
//! which escapes its own attributes.

use std::fmt::Write;

use diesel_avatar::contract::limits::MAX_DESCRIPTION_CHARS;
use diesel_avatar::html::Escaped;
use diesel_avatar::Rating;
use url::form_urlencoded;

use crate::db::{AvatarView, Listed, User, SHOWN_SIZES};
use crate::error::Problem;

/// The placeholder's size on the page; its `srcset` adds 2x.
pub const PLACEHOLDER_SIZE: u32 = 64;

fn e(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// One query parameter, encoded for a URL (and still to be HTML-escaped).
fn param(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · pg_avatar demo</title>
<link rel="stylesheet" href="/static/demo.css">
<header><a href="/">pg_avatar demo</a> <span>diesel-avatar and axum, avatars stored and resized in PostgreSQL</span></header>
<main>
{body}
</main>
<script src="/static/demo.js"></script>
</html>
"#,
        title = e(title),
    )
}

fn problem_box(out: &mut String, problem: Option<&Problem>) {
    let Some(problem) = problem else { return };
    let _ = write!(
        out,
        r#"<div class="problem" id="problem" role="alert"><strong>Refused:</strong> <span id="problem-message">{}</span>"#,
        e(&problem.message)
    );
    if let Some(hint) = &problem.hint {
        let _ = write!(out, r#"<br><span id="problem-hint">{}</span>"#, e(hint));
    }
    out.push_str("</div>\n");
}

/// The front page: every user, and a form for a new one. `base` is where
/// this server is reached (the placeholders' URLs start with it).
pub fn index(users: &[Listed], base: &str, problem: Option<&Problem>, name: &str) -> String {
    let mut out = String::from("<h1>Users</h1>\n");
    problem_box(&mut out, problem);
    out.push_str(
        "<p>Each user is a row of <code>users</code>, a diesel model with <code>#[derive(Avatar)]</code>. \
         The table is attached (<code>avatar.attach('users', 'id')</code>), so deleting a user wipes its avatar.</p>\n",
    );
    if users.is_empty() {
        out.push_str("<p id=\"no-users\">No users yet.</p>\n");
    } else {
        out.push_str("<ul class=\"users\" id=\"users\">\n");
        for listed in users {
            let User { id, name } = &listed.user;
            let picture = match &listed.img {
                Some(img) => img.to_string(),
                None => placeholder_img(base, name, 32),
            };
            let _ = writeln!(
                out,
                r#"<li>{picture} <a href="/users/{id}">{}</a> <small>users,{id}</small></li>"#,
                e(name)
            );
        }
        out.push_str("</ul>\n");
    }
    let _ = write!(
        out,
        r#"<form method="post" action="/users" class="row" id="new-user">
<label>Name <input name="name" id="new-name" required value="{}" autocomplete="off"></label>
<button type="submit" id="create">Create user</button>
</form>
"#,
        e(name)
    );
    layout("Users", &out)
}

/// The `<img>` of a name's initial placeholder at `size` CSS pixels, at
/// 1x and 2x. `data-route` is what the page's script builds its URLs on.
fn placeholder_img(base: &str, name: &str, size: u32) -> String {
    let src = placeholder_url(base, name, size);
    let double = placeholder_url(base, name, size * 2);
    format!(
        r#"<img class="placeholder" src="{}" srcset="{} 1x, {} 2x" width="{size}" height="{size}" alt="{}" data-route="{}">"#,
        e(&src),
        e(&src),
        e(&double),
        e(&format!("{name}'s initial")),
        e(&placeholder_route(base)),
    )
}

/// Any digest will do: with `f=y` the Libravatar route looks up no
/// address and answers its default.
const ANY_DIGEST: &str = "00000000000000000000000000000000";

/// The Libravatar route's path for placeholders, on this server.
fn placeholder_route(base: &str) -> String {
    format!("{}/avatar/{ANY_DIGEST}", base.trim_end_matches('/'))
}

/// A name's initial placeholder, as the Libravatar route (in this process)
/// answers it: `d=initials&name=…` names it, `f=y` forces the default, and
/// the image is `avatar.avatar_default_exact('initial', name, size)`.
pub fn placeholder_url(base: &str, name: &str, size: u32) -> String {
    format!(
        "{}?d=initials&name={}&f=y&s={size}",
        placeholder_route(base),
        param(name)
    )
}

/// What the user page shows besides the user.
pub struct UserPage<'a> {
    pub user: &'a User,
    pub avatar: Option<&'a AvatarView>,
    /// Where this server is reached: the Libravatar URLs start with it.
    pub base: &'a str,
    /// The MD5 of the address just set, if any.
    pub libravatar: Option<&'a str>,
    /// The name to draw the placeholder of.
    pub placeholder: &'a str,
    pub notice: Option<&'a str>,
    pub problem: Option<&'a Problem>,
    /// The address the form shows again after refusing it.
    pub email: &'a str,
}

/// The Libravatar URL of an address's MD5 digest, on this server, for an
/// avatar of `rating`: above `g`, the URL must accept it with `r=`, or the
/// route answers the default instead (as Libravatar does).
pub fn libravatar_url(base: &str, md5: &str, size: u32, rating: Rating) -> String {
    let base = base.trim_end_matches('/');
    match rating {
        Rating::G => format!("{base}/avatar/{md5}?s={size}"),
        rating => format!("{base}/avatar/{md5}?s={size}&r={}", rating.name()),
    }
}

pub fn user(page: &UserPage) -> String {
    let user = page.user;
    let id = user.id;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<h1 id="user-name">{} <small>users,{id}</small></h1>"#,
        e(&user.name)
    );
    if let Some(notice) = page.notice {
        let _ = writeln!(
            out,
            r#"<div class="notice" id="notice" role="status">{}</div>"#,
            e(notice)
        );
    }
    problem_box(&mut out, page.problem);

    // The avatar as stored.
    out.push_str("<section id=\"avatar\">\n<h2>Avatar</h2>\n");
    match page.avatar {
        Some(avatar) => avatar_section(&mut out, avatar),
        None => {
            let _ = writeln!(
                out,
                r#"<p id="no-avatar">No avatar yet; until there is one, pages can show the initial. {}</p>"#,
                placeholder_img(page.base, &user.name, PLACEHOLDER_SIZE)
            );
        }
    }
    out.push_str("</section>\n");

    upload_section(&mut out, page);
    libravatar_section(&mut out, page);

    // The placeholder for any name.
    let name = page.placeholder;
    let _ = write!(
        out,
        r#"<section id="placeholder">
<h2>Initial placeholder</h2>
<p>What to show before there is an avatar: the first letter of the name on a colour from its hash,
<code>avatar.avatar_default_exact('initial', name, size)</code>, as this server's Libravatar route answers
<code>d=initials&amp;name=…</code> with <code>f=y</code> (the default, whatever the digest).</p>
<form method="get" action="/users/{id}#placeholder" class="row">
<label>Name <input name="placeholder" id="placeholder-name" value="{name_attr}" autocomplete="off"></label>
<button type="submit" id="show-placeholder">Show</button>
</form>
<p class="sizes">{img} <a id="placeholder-url" href="{url}">{url}</a></p>
</section>
"#,
        name_attr = e(name),
        img = placeholder_img(page.base, name, PLACEHOLDER_SIZE).replacen(
            "<img ",
            "<img id=\"placeholder-img\" ",
            1
        ),
        url = e(&placeholder_url(page.base, name, PLACEHOLDER_SIZE)),
    );

    let _ = write!(
        out,
        r#"<section id="delete">
<h2>Delete</h2>
<form method="post" action="/users/{id}/delete">
<p>Deleting the row deletes its avatar, cache and addresses in the same transaction (the trigger <code>attach</code> installed).</p>
<button type="submit" id="delete-user" class="danger">Delete {}</button>
</form>
</section>
"#,
        e(&user.name)
    );
    layout(&user.name, &out)
}

fn avatar_section(out: &mut String, avatar: &AvatarView) {
    out.push_str("<div class=\"avatar-grid\">\n<div>\n<div class=\"sizes\" id=\"sizes\">\n");
    for (img, size) in avatar.imgs.iter().zip(SHOWN_SIZES) {
        let _ = writeln!(
            out,
            r#"<figure data-size="{size}">{img}<figcaption>{size} px</figcaption></figure>"#
        );
    }
    out.push_str(
        "</div>\n<p class=\"small\">Each <code>&lt;img&gt;</code> has a <code>srcset</code> at 1x, 2x and 3x: \
         the browser fetches the density of its screen.</p>\n",
    );
    let url = avatar.url.as_str();
    let _ = writeln!(
        out,
        r#"<p>Public URL: <a id="public-url" href="{}">{}</a></p>"#,
        e(url),
        e(url)
    );
    out.push_str("<p>The same URL naming its format:");
    for (format, url) in &avatar.formats {
        let _ = write!(
            out,
            r#" <a class="format" href="{}">{}</a>"#,
            e(url.as_str()),
            e(format.name())
        );
    }
    out.push_str("</p>\n</div>\n");
    let info = &avatar.info;
    let none = || "—".to_string();
    let rows = [
        ("public id", avatar.id.simple().to_string()),
        ("resource", info.resource.clone()),
        ("sha1", info.sha1.clone()),
        ("bytes", info.bytes.to_string()),
        ("width", info.width.to_string()),
        ("height", info.height.to_string()),
        ("type", info.mime_type.clone()),
        ("created", info.created_at.clone()),
        ("updated", info.updated_at.clone()),
        ("cached sizes", info.cached_sizes.to_string()),
        ("rating", info.rating.clone().unwrap_or_else(none)),
        ("description", info.description.clone().unwrap_or_else(none)),
    ];
    out.push_str("<table id=\"metadata\"><caption><code>avatar.avatar_info(id)</code></caption>\n");
    for (name, value) in &rows {
        let _ = writeln!(
            out,
            r#"<tr><th>{}</th><td data-field="{}">{}</td></tr>"#,
            e(name),
            e(&name.replace(' ', "-")),
            e(value)
        );
    }
    out.push_str("</table>\n</div>\n");
}

fn upload_section(out: &mut String, page: &UserPage) {
    let user = page.user;
    let current_rating = page
        .avatar
        .and_then(|a| a.info.rating.as_deref())
        .and_then(Rating::parse)
        .unwrap_or_default();
    let description = page
        .avatar
        .and_then(|a| a.info.description.as_deref())
        .unwrap_or("");
    let _ = write!(
        out,
        r#"<section id="upload">
<h2>Upload a picture</h2>
<form method="post" action="/users/{id}/avatar" enctype="multipart/form-data" id="upload-form">
<label class="drop" id="drop">
<span>Drop a picture here, or choose a file:</span>
<input type="file" name="picture" id="picture" accept="image/*">
</label>
<div class="cropper" id="cropper" hidden>
<p>Drag the square to choose what to keep; drag a corner to resize it (arrow keys move it, + and − resize it).</p>
<div class="frame" id="frame">
<img id="preview" alt="The picture you chose">
<div class="square" id="square" tabindex="0" role="slider" aria-label="Crop square">
<span class="handle nw" data-corner="nw"></span><span class="handle ne" data-corner="ne"></span>
<span class="handle sw" data-corner="sw"></span><span class="handle se" data-corner="se"></span>
</div>
</div>
<p id="crop-readout" aria-live="polite"></p>
</div>
<input type="hidden" name="crop_x" id="crop_x">
<input type="hidden" name="crop_y" id="crop_y">
<input type="hidden" name="crop_size" id="crop_size">
<div class="row">
<label>Rating <select name="rating" id="rating">"#,
        id = user.id,
    );
    for rating in Rating::ALL {
        let selected = if rating == current_rating {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<option value="{0}"{selected}>{0}</option>"#,
            rating.name()
        );
    }
    let _ = write!(
        out,
        r#"</select></label>
<label class="grow">Description (alt text) <input name="description" id="description" maxlength="{MAX_DESCRIPTION_CHARS}" value="{}"></label>
<button type="submit" id="save">Save</button>
</div>
"#,
        e(description),
    );
    out.push_str(
        "<p class=\"small\">Any JPEG, PNG, WebP, GIF or BMP; pg_avatar turns it upright, crops it, and stores one JPEG master. \
         Without a new file, Save changes the rating and description only.</p>\n</form>\n</section>\n",
    );
}

fn libravatar_section(out: &mut String, page: &UserPage) {
    let _ = write!(
        out,
        r#"<section id="libravatar">
<h2>Libravatar</h2>
<p>Set an address, and this server's Libravatar route (<code>/avatar/{{md5 or sha256}}</code>) answers for it with this avatar.
Only digests of the address are stored.</p>
<form method="post" action="/users/{}/email" class="row">
<label class="grow">Address <input name="email" id="email" inputmode="email" autocomplete="off" placeholder="ada@example.org" value="{}"></label>
<button type="submit" id="set-email">Set address</button>
</form>
"#,
        page.user.id,
        e(page.email)
    );
    if let Some(md5) = page.libravatar {
        let rating = page
            .avatar
            .and_then(|a| a.info.rating.as_deref())
            .and_then(Rating::parse)
            .unwrap_or_default();
        let url = libravatar_url(page.base, md5, 128, rating);
        let _ = write!(
            out,
            r#"<p>Libravatar URL: <a id="libravatar-url" href="{0}">{0}</a></p>
<p><img id="libravatar-img" src="{0}" width="128" height="128" alt="What the Libravatar route answers"></p>
"#,
            e(&url)
        );
        if rating != Rating::G {
            let _ = writeln!(
                out,
                "<p class=\"small\">The avatar is rated {0}: a request without <code>r={0}</code> (or above) gets the default image instead.</p>",
                rating.name()
            );
        }
    }
    out.push_str("</section>\n");
}

/// A page of its own for an error no form can show.
pub fn error(title: &str, problem: &Problem) -> String {
    let mut out = format!("<h1>{}</h1>\n", e(title));
    problem_box(&mut out, Some(problem));
    out.push_str("<p><a href=\"/\">Back to the users</a></p>\n");
    layout(title, &out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Info;
    use diesel_avatar::{AvatarUrls, Format, Uuid};

    const HOSTILE: &str = r#"<script>alert("x")</script> & 'co'"#;

    fn hostile_user() -> User {
        User {
            id: 7,
            name: HOSTILE.into(),
        }
    }

    fn page<'a>(
        user: &'a User,
        avatar: Option<&'a AvatarView>,
        problem: &'a Problem,
    ) -> UserPage<'a> {
        UserPage {
            user,
            avatar,
            base: "http://127.0.0.1:8090/",
            libravatar: Some("0bc83cb571cd1c50ba6f3e8a78ef1346"),
            placeholder: HOSTILE,
            notice: Some(HOSTILE),
            problem: Some(problem),
            email: HOSTILE,
        }
    }

    fn view() -> AvatarView {
        let urls =
            AvatarUrls::new("http://127.0.0.1:8090", "demo", b"a secret of 16+ bytes").unwrap();
        let (id, sha1) = (Uuid::from_u128(9), "ab".repeat(20));
        AvatarView {
            id,
            imgs: SHOWN_SIZES
                .iter()
                .map(|&s| urls.img(id, &sha1, s, HOSTILE))
                .collect(),
            url: urls.url(id, &sha1, 128),
            formats: vec![(Format::Png, urls.url_as(id, &sha1, 128, Format::Png))],
            info: Info {
                resource: "users,7".into(),
                sha1: sha1.clone(),
                bytes: 1234,
                width: 300,
                height: 300,
                mime_type: "image/jpeg".into(),
                created_at: "2025-01-01 00:00:00 UTC".into(),
                updated_at: "2025-01-01 00:00:00 UTC".into(),
                cached_sizes: 3,
                rating: Some("pg".into()),
                description: Some(HOSTILE.into()),
            },
        }
    }

    fn hostile_problem() -> Problem {
        Problem {
            message: HOSTILE.into(),
            hint: Some(HOSTILE.into()),
        }
    }

    #[test]
    fn every_dynamic_text_is_escaped() {
        let problem = hostile_problem();
        let user = hostile_user();
        let avatar = view();
        for html in [
            super::user(&page(&user, Some(&avatar), &problem)),
            super::user(&page(&user, None, &problem)),
            index(
                &[Listed {
                    user: user.clone(),
                    img: None,
                }],
                "http://127.0.0.1:8090",
                Some(&Problem::new(HOSTILE)),
                HOSTILE,
            ),
            error(HOSTILE, &Problem::new(HOSTILE)),
        ] {
            assert!(!html.contains("<script>alert"), "{html}");
            assert!(!html.contains("'co'"), "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(&quot;x&quot;)"),
                "{html}"
            );
            // The page's own script, and nothing else.
            assert_eq!(html.matches("<script").count(), 1, "{html}");
        }
    }

    #[test]
    fn the_avatar_is_shown_at_each_size_with_1x_and_2x_and_its_metadata() {
        let problem = hostile_problem();
        let user = hostile_user();
        let avatar = view();
        let html = super::user(&page(&user, Some(&avatar), &problem));
        for size in SHOWN_SIZES {
            assert!(
                html.contains(&format!(r#"width="{size}" height="{size}""#)),
                "{size}"
            );
        }
        assert!(html.matches(" 1x, ").count() >= 3);
        assert!(html.contains(" 2x"));
        assert!(
            html.contains(r#"<td data-field="rating">pg</td>"#),
            "{html}"
        );
        assert!(html.contains(r#"<td data-field="width">300</td>"#));
        assert!(html.contains(r#"<option value="pg" selected>"#));
        assert!(html.contains(
            r#"href="http://127.0.0.1:8090/avatar/0bc83cb571cd1c50ba6f3e8a78ef1346?s=128&amp;r=pg""#
        ));
    }

    #[test]
    fn the_placeholder_is_the_libravatar_routes_answer() {
        let problem = hostile_problem();
        let user = User {
            id: 3,
            name: "Ada".into(),
        };
        let mut page = page(&user, None, &problem);
        page.placeholder = "Zoë";
        let html = super::user(&page);
        let route = "http://127.0.0.1:8090/avatar/00000000000000000000000000000000";
        assert!(html.contains(&format!(
            r#"<img id="placeholder-img" class="placeholder" src="{route}?d=initials&amp;name=Zo%C3%AB&amp;f=y&amp;s=64" srcset="{route}?d=initials&amp;name=Zo%C3%AB&amp;f=y&amp;s=64 1x, {route}?d=initials&amp;name=Zo%C3%AB&amp;f=y&amp;s=128 2x""#
        )), "{html}");
        assert!(html.contains(&format!(r#"data-route="{route}""#)), "{html}");
        assert!(html.contains(&format!("{route}?d=initials&amp;name=Ada&amp;f=y&amp;s=64")));
        assert!(!html.contains("/initials"), "{html}");
    }

    #[test]
    fn placeholder_urls_encode_the_name() {
        assert_eq!(
            placeholder_url("http://h:1/", "Émile & Co", 64),
            "http://h:1/avatar/00000000000000000000000000000000?d=initials&name=%C3%89mile+%26+Co&f=y&s=64"
        );
        assert_eq!(
            libravatar_url("http://h:1/", "ab", 80, Rating::G),
            "http://h:1/avatar/ab?s=80"
        );
        assert_eq!(
            libravatar_url("http://h:1", "ab", 80, Rating::R),
            "http://h:1/avatar/ab?s=80&r=r"
        );
    }
}
