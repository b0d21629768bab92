//! The Libravatar-compatible route, parameter by parameter, against what
//! the protocol (https://wiki.libravatar.org/api/) asks.

use pg_avatar_server::{Libravatar, Options};
use pg_avatar_tests::route::{database, get, header, Server};
use pg_avatar_tests::*;

struct Fixture {
    _db: TestDb,
    server: Server,
    md5: String,
    sha256: String,
    unknown: String,
    avatar_64: Vec<u8>,
    c: Client,
}

fn fixture(label: &str) -> Fixture {
    let db = TestDb::new(label);
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(300, 200)).unwrap();
    c.execute(
        "SELECT avatar.avatar_set_email('users,1', 'ada@example.org')",
        &[],
    )
    .unwrap();
    let row = c
        .query_one(
            "SELECT md5('ada@example.org'), encode(sha256('ada@example.org'), 'hex'), md5('nobody@example.org')",
            &[],
        )
        .unwrap();
    let avatar_64 = get_sql(&mut c, id, 64);
    let server = Server::start(
        vec![database(&db, db.conninfo())],
        Options {
            libravatar: Some(Libravatar {
                database: db.name.clone(),
                allowed_default_hosts: vec!["img.example.org".into()],
                ..Libravatar::default()
            }),
            ..Options::default()
        },
    );
    Fixture {
        _db: db,
        server,
        md5: row.get(0),
        sha256: row.get(1),
        unknown: row.get(2),
        avatar_64,
        c,
    }
}

fn get_sql(c: &mut Client, id: Uuid, size: i32) -> Vec<u8> {
    pg_avatar_tests::get(c, id, size).unwrap().unwrap()
}

fn generated(c: &mut Client, kind: &str, seed: &str, size: i32) -> Vec<u8> {
    c.query_one(
        "SELECT avatar.avatar_default($1, $2, $3)",
        &[&kind, &seed, &size],
    )
    .unwrap()
    .get(0)
}

fn side(bytes: &[u8]) -> u32 {
    let image = image::load_from_memory(bytes).unwrap();
    assert_eq!(image.width(), image.height());
    image.width()
}

#[derive(Debug)]
enum Want {
    /// The stored avatar at this side.
    Avatar(u32),
    /// A generated default of this kind and side.
    Generated(&'static str, u32),
    NotFound,
    Redirect(&'static str),
}

#[test]
fn every_parameter_behaves_as_the_protocol_says() {
    let mut f = fixture("libravatar");
    let (md5, sha256, unknown) = (f.md5.clone(), f.sha256.clone(), f.unknown.clone());
    let upper = md5.to_uppercase();
    let allowed = "https%3A%2F%2Fimg.example.org%2Fa.png";
    let evil = "https%3A%2F%2Fevil.example%2Fa.png";
    let cases: Vec<(&str, String, Want)> = vec![
        (&md5, String::new(), Want::Avatar(80)),
        (&md5, "s=64".into(), Want::Avatar(64)),
        (&md5, "size=64".into(), Want::Avatar(64)),
        (&md5, "s=0".into(), Want::Avatar(80)),
        (&md5, "s=".into(), Want::Avatar(80)),
        (&md5, "s=abc".into(), Want::Avatar(80)),
        (&md5, "s=-5".into(), Want::Avatar(80)),
        (&md5, "s=100000".into(), Want::Avatar(512)),
        (&sha256, "s=32".into(), Want::Avatar(32)),
        (&upper, String::new(), Want::Avatar(80)),
        (&md5, "d=404".into(), Want::Avatar(80)),
        (&md5, format!("d={allowed}"), Want::Avatar(80)),
        (&md5, "d=404&f=y".into(), Want::NotFound),
        (&md5, "d=404&forcedefault=y".into(), Want::NotFound),
        (&md5, "f=y".into(), Want::Generated("mm", 80)),
        (
            &md5,
            "d=identicon&f=y&s=40".into(),
            Want::Generated("identicon", 40),
        ),
        (&unknown, String::new(), Want::Generated("mm", 80)),
        (&unknown, "d=404".into(), Want::NotFound),
        (&unknown, "default=404".into(), Want::NotFound),
        (&unknown, "d=mm".into(), Want::Generated("mm", 80)),
        (&unknown, "d=mp".into(), Want::Generated("mp", 80)),
        (
            &unknown,
            "d=identicon&s=100".into(),
            Want::Generated("identicon", 100),
        ),
        (&unknown, "d=retro".into(), Want::Generated("retro", 80)),
        (
            &unknown,
            "d=monsterid".into(),
            Want::Generated("monsterid", 80),
        ),
        (
            &unknown,
            "d=robohash".into(),
            Want::Generated("robohash", 80),
        ),
        (&unknown, "d=pagan".into(), Want::Generated("pagan", 80)),
        (
            &unknown,
            "d=blank&s=20".into(),
            Want::Generated("blank", 20),
        ),
        (
            &unknown,
            format!("d={allowed}"),
            Want::Redirect("https://img.example.org/a.png"),
        ),
        (&unknown, format!("d={evil}"), Want::Generated("mm", 80)),
        (&unknown, "d=nonsense".into(), Want::Generated("mm", 80)),
        ("not-a-digest", "d=404".into(), Want::NotFound),
    ];
    for (digest, query, want) in cases {
        let url = format!("{}/avatar/{digest}?{query}", f.server.base);
        let (response, body) = get(&url, &[]);
        let case = format!("{digest} ?{query} -> {want:?}");
        match want {
            Want::Avatar(size) => {
                assert_eq!(response.status(), 200, "{case}");
                assert_eq!(header(&response, "content-type"), "image/jpeg", "{case}");
                assert_eq!(side(&body), size, "{case}");
                if size == 64 {
                    assert_eq!(body, f.avatar_64, "{case}: the stored avatar's bytes");
                }
            }
            Want::Generated(kind, size) => {
                assert_eq!(response.status(), 200, "{case}");
                let seed = pg_avatar_server::libravatar::rules::digest(digest).unwrap_or_default();
                assert_eq!(
                    body,
                    generated(&mut f.c, kind, &seed, size as i32),
                    "{case}"
                );
                assert_eq!(side(&body), size, "{case}");
                let mime = if kind == "blank" {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                assert_eq!(header(&response, "content-type"), mime, "{case}");
            }
            Want::NotFound => assert_eq!(response.status(), 404, "{case}"),
            Want::Redirect(to) => {
                assert_eq!(response.status(), 302, "{case}");
                assert_eq!(header(&response, "location"), to, "{case}");
            }
        }
    }
}

#[test]
fn revalidation_and_disabled_avatars() {
    let mut f = fixture("libravatar_etag");
    for query in ["s=64", "d=identicon&s=64"] {
        let digest = if query.starts_with('d') {
            &f.unknown
        } else {
            &f.md5
        };
        let url = format!("{}/avatar/{digest}?{query}", f.server.base);
        let (first, _) = get(&url, &[]);
        let etag = header(&first, "etag").to_string();
        assert!(
            !etag.is_empty() && header(&first, "cache-control").starts_with("public, max-age=")
        );
        // Every form RFC 9110 allows: the tag, weakly, among others, or any.
        let weak = format!("W/{etag}");
        let listed = format!("\"other\", {etag}");
        for tags in [etag.as_str(), &weak, &listed, "*"] {
            let (again, body) = get(&url, &[("if-none-match", tags)]);
            assert_eq!(
                (again.status().as_u16(), body.len()),
                (304, 0),
                "{query}, If-None-Match: {tags}"
            );
        }
    }
    f.c.batch_execute("SELECT avatar.avatar_disable('users,1')")
        .unwrap();
    let url = format!("{}/avatar/{}?d=404", f.server.base, f.md5);
    // The route's memory hears of the change by notification.
    let mut status = 0;
    for _ in 0..40 {
        status = get(&url, &[]).0.status().as_u16();
        if status == 404 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, 404, "a disabled avatar is not served");
}

#[test]
fn the_route_is_off_unless_configured() {
    let db = TestDb::new("libravatar_off");
    let server = Server::start(vec![database(&db, db.conninfo())], Options::default());
    let (response, _) = get(&format!("{}/avatar/{}", server.base, "a".repeat(32)), &[]);
    assert_eq!(response.status(), 404);
}

/// The route remembers which avatar a digest leads to, and forgets it when
/// an avatar or an address changes: what it serves follows the database
/// within moments, and while it remembers it needs no database at all.
#[test]
fn remembered_digests_follow_every_change() {
    use std::time::{Duration, Instant};

    let db = TestDb::new("libravatar_memory");
    let mut c = db.connect();
    let reader = Role::as_in_readme(&db, "web", "avatar_reader");
    let web = &reader.name;
    let server = Server::start(
        vec![database(&db, db.conninfo_as(web))],
        Options {
            libravatar: Some(Libravatar {
                database: db.name.clone(),
                ..Libravatar::default()
            }),
            ..Options::default()
        },
    );
    c.batch_execute("SELECT avatar.avatar_set_email('users,1', 'ada@example.org')")
        .unwrap();
    let md5: String = c
        .query_one("SELECT md5('ada@example.org')", &[])
        .unwrap()
        .get(0);
    let url = format!("{}/avatar/{md5}?s=64&d=404", server.base);
    let status = || get(&url, &[]).0.status().as_u16();
    let eventually = |want: u16, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while status() != want {
            assert!(Instant::now() < deadline, "{what}: still not {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    assert_eq!(status(), 404, "no avatar yet");
    set(&mut c, "users,1", &png(80, 80)).unwrap();
    eventually(200, "a new avatar for the address's owner");

    // Remembered: served without asking the database which avatar it is.
    // (Once the notifications of the set above have all been heard, so
    // that nothing evicts what the next request stores.)
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(), 200);
    // The image bytes are remembered too, so with no function left to
    // call the answer is still the avatar.
    let functions = "avatar.avatar_rendition(uuid, integer, text), avatar.avatar_sha1(uuid), \
                     avatar.avatar_by_digest(text)";
    c.batch_execute(&format!(
        "REVOKE EXECUTE ON FUNCTION {functions} FROM {web}"
    ))
    .unwrap();
    assert_eq!(status(), 200);
    c.batch_execute(&format!("GRANT EXECUTE ON FUNCTION {functions} TO {web}"))
        .unwrap();

    c.batch_execute("SELECT avatar.avatar_set_email('users,2', 'ada@example.org')")
        .unwrap();
    eventually(404, "the address moved to a resource without an avatar");
    set(&mut c, "users,2", &png(80, 80)).unwrap();
    eventually(200, "that resource got one");
    c.batch_execute("SELECT avatar.avatar_disable('users,2')")
        .unwrap();
    eventually(404, "disabled");
    c.batch_execute("SELECT avatar.avatar_enable('users,2')")
        .unwrap();
    eventually(200, "enabled");
    c.batch_execute("SELECT avatar.avatar_unset_email('users,2', 'ada@example.org')")
        .unwrap();
    eventually(404, "the address was removed");
}

/// Generated defaults are remembered by what they depend on: a kind that
/// ignores its seed is one representation for every unknown address, so
/// a stream of made-up digests cannot fill the route's memory with copies
/// of the silhouette; each exact size is its own.
#[test]
fn seedless_defaults_are_one_representation() {
    let f = fixture("libravatar_seedless");
    let digest = |n: u32| format!("{n:032x}");
    for kind in ["mm", "mp", "blank"] {
        let tags: std::collections::HashSet<String> = (0..4)
            .map(|n| {
                let url = format!("{}/avatar/{}?d={kind}&s=57", f.server.base, digest(n));
                let (response, _) = get(&url, &[]);
                assert_eq!(response.status(), 200);
                header(&response, "etag").to_string()
            })
            .collect();
        assert_eq!(tags.len(), 1, "{kind}: {tags:?}");
        let (at_60, _) = get(
            &format!("{}/avatar/{}?d={kind}&s=60", f.server.base, digest(9)),
            &[],
        );
        assert!(
            !tags.contains(header(&at_60, "etag")),
            "{kind}: 57 px is not 60 px"
        );
    }
    let (a, _) = get(
        &format!("{}/avatar/{}?d=identicon", f.server.base, digest(1)),
        &[],
    );
    let (b, _) = get(
        &format!("{}/avatar/{}?d=identicon", f.server.base, digest(2)),
        &[],
    );
    assert_ne!(
        header(&a, "etag"),
        header(&b, "etag"),
        "identicons depend on the seed"
    );
}

/// `/avatar/<md5>.jpg`, as Gravatar's documentation allows and many of its
/// client libraries write it, is the same avatar; the suffix picks the
/// format, over `Accept`, and an unknown suffix names no avatar.
#[test]
fn a_suffix_names_the_format() {
    let f = fixture("libravatar_suffix");
    let base = format!("{}/avatar/{}", f.server.base, f.md5);
    let (plain, plain_body) = get(&format!("{base}?s=64"), &[]);
    assert_eq!(header(&plain, "vary"), "Accept");
    assert_eq!(plain_body, f.avatar_64, "the JPEG, without a suffix");
    for (suffix, mime) in [
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("JPG", "image/jpeg"),
        ("png", "image/png"),
        ("webp", "image/webp"),
    ] {
        let (response, body) = get(
            &format!("{base}.{suffix}?s=64"),
            &[("accept", "image/avif,image/webp,*/*")],
        );
        assert_eq!(response.status(), 200, "{suffix}");
        assert_eq!(header(&response, "content-type"), mime, "{suffix}");
        assert_eq!(header(&response, "vary"), "", "{suffix}: the URL decides");
        assert_eq!(side(&body), 64, "{suffix}");
        if mime == "image/jpeg" {
            assert_eq!(body, f.avatar_64, "{suffix}");
        }
    }
    // Not a format: not a digest, so the default.
    let (gif, _) = get(&format!("{base}.gif?s=64&d=404"), &[]);
    assert_eq!(gif.status(), 404);
}

fn pixels(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

/// Stock clients ask for any `s` and rely on getting exactly that: the
/// avatar and every generated default are `s` x `s`, made from the
/// quantised rendition, which is all the database keeps.
#[test]
fn sizes_are_exact_and_store_nothing_new() {
    let mut f = fixture("libravatar_exact");
    let id = avatar_of(&mut f.c, "users,1").unwrap();
    let quantised_128 = get_sql(&mut f.c, id, 128);
    for s in [120u32, 72, 33, 1, 129, 511, 512, 128] {
        for (digest, query) in [
            (&f.md5, String::new()),
            (&f.md5, ".png".into()),
            (&f.unknown, String::new()),
            (&f.unknown, "&d=identicon".into()),
            (&f.unknown, "&d=color".into()),
            (&f.unknown, "&d=initials&name=Ada".into()),
        ] {
            let (suffix, query) = query
                .strip_prefix('.')
                .map_or(("", query.as_str()), |ext| (ext, ""));
            let dot = if suffix.is_empty() { "" } else { "." };
            let url = format!(
                "{}/avatar/{digest}{dot}{suffix}?s={s}{query}",
                f.server.base
            );
            let (response, body) = get(&url, &[]);
            assert_eq!(response.status(), 200, "{url}");
            let image = image::load_from_memory(&body).unwrap();
            assert_eq!((image.width(), image.height()), (s, s), "{url}");
        }
    }
    let (_, at_128) = get(&format!("{}/avatar/{}?s=128", f.server.base, f.md5), &[]);
    assert_eq!(
        at_128, quantised_128,
        "a quantised size is the stored rendition"
    );
    let (_, at_120) = get(&format!("{}/avatar/{}?s=120", f.server.base, f.md5), &[]);
    let (a, b) = (pixels(&at_120), pixels(&quantised_128));
    let centre = |p: &image::RgbImage| p.get_pixel(p.width() / 2, p.height() / 2).0;
    assert!(
        centre(&a)
            .iter()
            .zip(centre(&b))
            .all(|(x, y)| x.abs_diff(y) < 24),
        "120 px is the avatar, resized"
    );
    let sizes: Vec<i32> =
        f.c.query(
            "SELECT DISTINCT size FROM avatar.avatar_cache WHERE avatar_id = $1 ORDER BY 1",
            &[&id],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for size in &sizes {
        assert_eq!(
            avatar_contract::size::quantise(i64::from(*size)).unwrap(),
            *size as u32,
            "only quantised sizes are stored: {sizes:?}"
        );
    }
}

/// Gravatar's newer defaults: initials of a name, a flat colour from the
/// digest, and wavatar drawn as one of the generated kinds.
#[test]
fn initials_color_and_wavatar() {
    let f = fixture("libravatar_defaults");
    let fetch = |digest: &str, query: &str| {
        let (response, body) = get(
            &format!("{}/avatar/{digest}?s=64&{query}", f.server.base),
            &[],
        );
        assert_eq!(response.status(), 200, "{query}");
        pixels(&body)
    };
    let mm = fetch(&f.unknown, "d=mm");
    let grey = |p: &image::Rgb<u8>| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() < 12;

    let color = fetch(&f.unknown, "d=color");
    let first = *color.get_pixel(0, 0);
    assert!(!grey(&first), "a colour, not grey: {first:?}");
    assert!(
        color
            .pixels()
            .all(|p| p.0.iter().zip(first.0).all(|(a, b)| a.abs_diff(b) < 8)),
        "one flat colour"
    );
    let other = fetch(&"b".repeat(32), "d=color");
    assert_ne!(*other.get_pixel(0, 0), first, "from the digest");

    let wavatar = fetch(&f.unknown, "d=wavatar");
    assert_ne!(wavatar, mm, "wavatar is generated, not the silhouette");
    assert_eq!(
        wavatar,
        fetch(&f.unknown, "d=retro"),
        "drawn as the retro pattern"
    );

    for query in [
        "d=initials&name=Ada+Lovelace",
        "d=initials&initials=AL",
        "d=initials&name=Zoe&initials=AL",
    ] {
        let letter = fetch(&f.unknown, query);
        let white = letter
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c > 235))
            .count();
        assert!(white > 30, "{query}: a white letter ({white} white pixels)");
        assert!(!grey(letter.get_pixel(1, 1)), "{query}: on a colour");
    }
    assert_eq!(
        fetch(&f.unknown, "d=initials&name=Ada+Lovelace"),
        fetch(&f.unknown, "d=initials&initials=Ada+Lovelace"),
        "the same name draws the same image"
    );
    assert_eq!(
        fetch(&f.unknown, "d=initials"),
        mm,
        "no name: the silhouette"
    );
    // A name is anything a client sends: it never breaks the answer.
    for name in ["%00", "A%00", "%FF", "%0D%0A"] {
        let (response, _) = get(
            &format!(
                "{}/avatar/{}?d=initials&name={name}",
                f.server.base, f.unknown
            ),
            &[],
        );
        assert_eq!(response.status(), 200, "name={name}");
    }
    let (response, _) = get(
        &format!(
            "{}/avatar/{}?d=initials&name=%22%0A%E2%80%AE{}",
            f.server.base,
            f.unknown,
            "x".repeat(5000)
        ),
        &[],
    );
    assert_eq!(response.status(), 200);
}

/// `r=` is the highest rating a request accepts, `g` by default: an
/// avatar rated above it is answered as if there were none, and the
/// route's memory follows a new rating.
#[test]
fn ratings_hide_avatars_from_requests_that_do_not_accept_them() {
    use std::time::{Duration, Instant};
    let mut f = fixture("libravatar_rated");
    let url = |query: &str| format!("{}/avatar/{}?s=64&d=404{query}", f.server.base, f.md5);
    let status = |query: &str| get(&url(query), &[]).0.status().as_u16();
    for query in ["", "&r=g", "&r=x"] {
        assert_eq!(status(query), 200, "a g avatar for {query:?}");
    }
    f.c.batch_execute("SELECT avatar.avatar_set_rating('users,1', 'pg')")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status("") != 404 {
        assert!(
            Instant::now() < deadline,
            "the route did not hear of the rating"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (query, want) in [
        ("", 404),
        ("&r=g", 404),
        ("&r=G", 404),
        ("&rating=g", 404),
        ("&r=bogus", 404),
        ("&r=pg", 200),
        ("&r=PG", 200),
        ("&r=r", 200),
        ("&rating=x", 200),
    ] {
        assert_eq!(status(query), want, "a pg avatar for {query:?}");
    }
    let (response, _) = get(
        &format!("{}/avatar/{}?s=64&d=identicon&r=g", f.server.base, f.md5),
        &[],
    );
    let seed = f.md5.clone();
    let (_, body) = get(
        &format!("{}/avatar/{}?s=64&d=identicon&r=g", f.server.base, f.md5),
        &[],
    );
    assert_eq!(response.status(), 200);
    assert_eq!(
        body,
        generated(&mut f.c, "identicon", &seed, 64),
        "d= applies"
    );
}
