//! The avatar route over real HTTP, against the real extension.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use diesel_avatar::AvatarUrls;
use pg_avatar_server::Options;
use pg_avatar_tests::route::{agent, cluster_port, database, get, header, Proxy, Server, SECRET};
use pg_avatar_tests::*;

fn with_avatar(label: &str) -> (TestDb, Uuid) {
    let db = TestDb::new(label);
    let id = set(&mut db.connect(), "users,1", &png(300, 300)).unwrap();
    (db, id)
}

#[test]
fn serves_exact_sizes_with_caching_headers() {
    let (db, id) = with_avatar("http_ok");
    let (server, urls) = Server::for_db(&db);
    let sha1 = master_sha1(&mut db.connect(), id);
    let url = urls.url(id, &sha1, 128);

    let (response, body) = get(url.as_str(), &[]);
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "image/jpeg");
    assert_eq!(
        header(&response, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&response, "etag"),
        format!("\"{}-128\"", &sha1[..16])
    );
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 128);

    // Without the version, or with an old one, caches must revalidate.
    let path = format!(
        "{}/avatar/{}/{}",
        server.base,
        urls.database_key(),
        id.simple()
    );
    let (response, _) = get(&format!("{path}?s=128"), &[]);
    assert_eq!(header(&response, "cache-control"), "public, max-age=604800");
    // A version that is not the image's is never cached for long.
    let (response, _) = get(&format!("{path}?s=128&v=000000000000"), &[]);
    assert_eq!(header(&response, "cache-control"), "public, no-cache");
    let (response, body) = get(&path, &[]);
    assert_eq!(response.status(), 200);
    assert_eq!(
        image::load_from_memory(&body).unwrap().width(),
        64,
        "the default size"
    );
}

#[test]
fn accept_picks_png_or_webp_and_each_is_its_own_representation() {
    let (db, id) = with_avatar("http_formats");
    let (_server, urls) = Server::for_db(&db);
    let url = urls.url(id, &master_sha1(&mut db.connect(), id), 100);
    let browser = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let mut tags = std::collections::HashSet::new();
    for (accept, mime, format) in [
        (None, "image/jpeg", image::ImageFormat::Jpeg),
        (Some("*/*"), "image/jpeg", image::ImageFormat::Jpeg),
        (Some("image/png"), "image/png", image::ImageFormat::Png),
        (Some(browser), "image/webp", image::ImageFormat::WebP),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        // Twice: once from the database, once from the route's memory.
        for attempt in 0..2 {
            let (response, body) = get(url.as_str(), &headers);
            assert_eq!(response.status(), 200, "{accept:?}");
            assert_eq!(header(&response, "content-type"), mime, "{accept:?}");
            assert_eq!(header(&response, "vary"), "Accept", "{accept:?}");
            assert_eq!(image::guess_format(&body).unwrap(), format, "{accept:?}");
            let decoded = image::load_from_memory(&body).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (100, 100));
            let etag = header(&response, "etag").to_string();
            if attempt == 0 {
                tags.insert((mime, etag.clone()));
            }
            // A tag revalidates its own format only.
            let mut conditional = headers.clone();
            conditional.push(("if-none-match", &etag));
            let (response, _) = get(url.as_str(), &conditional);
            assert_eq!(response.status(), 304, "{accept:?}");
            assert_eq!(header(&response, "vary"), "Accept");
        }
    }
    let distinct: std::collections::HashSet<&String> = tags.iter().map(|(_, tag)| tag).collect();
    assert_eq!(distinct.len(), 3, "one ETag per format: {tags:?}");
    let png_tag = &tags.iter().find(|(m, _)| *m == "image/png").unwrap().1;
    let (response, _) = get(
        url.as_str(),
        &[("accept", "image/webp"), ("if-none-match", png_tag)],
    );
    assert_eq!(
        response.status(),
        200,
        "a PNG's tag does not match the WebP"
    );
}

#[test]
fn head_and_conditional_requests() {
    let (db, id) = with_avatar("http_304");
    let (_server, urls) = Server::for_db(&db);
    let url = urls.url(id, &master_sha1(&mut db.connect(), id), 64);
    let (full, _) = get(url.as_str(), &[]);
    let etag = header(&full, "etag").to_string();

    let mut head = agent().head(url.as_str()).call().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "etag"), etag);
    assert_eq!(header(&head, "content-type"), "image/jpeg");
    assert!(head.body_mut().read_to_vec().unwrap().is_empty());

    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let (response, body) = get(url.as_str(), &[("if-none-match", &tag)]);
        assert_eq!(response.status(), 304, "{tag}");
        assert!(body.is_empty());
        assert_eq!(header(&response, "etag"), etag);
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
    }
    let (response, _) = get(
        url.as_str(),
        &[("if-none-match", "\"0000000000000000-64\"")],
    );
    assert_eq!(response.status(), 200);
}

#[test]
fn a_new_image_gets_a_new_version_and_etag() {
    let (db, id) = with_avatar("http_version");
    let (_server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    let old_url = urls.url(id, &master_sha1(&mut c, id), 64);
    let (old, _) = get(old_url.as_str(), &[]);

    assert_eq!(set(&mut c, "users,1", &jpeg(200, 100)).unwrap(), id);
    let new_url = urls.url(id, &master_sha1(&mut c, id), 64);
    assert_ne!(old_url, new_url);
    assert_eq!(old_url.path(), new_url.path(), "same id");
    // The route's memory forgets the old image when the notification arrives.
    let new = eventually(|| {
        let (new, _) = get(new_url.as_str(), &[("if-none-match", header(&old, "etag"))]);
        (new.status() == 200).then_some(new)
    });
    assert_ne!(header(&new, "etag"), header(&old, "etag"));
    // The old URL now serves the new image, but no longer as immutable.
    let (stale, _) = get(old_url.as_str(), &[]);
    assert_eq!(header(&stale, "cache-control"), "public, no-cache");
}

/// Polls for up to two seconds: the route's memory hears of a change by
/// notification, within a poll interval of the commit.
fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..40 {
        if let Some(done) = check() {
            return done;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("still not so after 2 s");
}

#[test]
fn served_from_memory_until_the_avatar_changes_or_goes() {
    let (db, id) = with_avatar("http_memory");
    let (_server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    let url = urls.url(id, &master_sha1(&mut c, id), 64);
    let (first, body) = get(url.as_str(), &[]);
    assert_eq!(first.status(), 200);

    // A query-free hit: with every cached row gone, the same bytes come back
    // and no row is made again. (Until the listener has subscribed, answers
    // come from the database and refill the table, so this may take a poll.)
    let (again, same) = eventually(|| {
        c.execute("DELETE FROM avatar.avatar_cache", &[]).unwrap();
        let (again, same) = get(url.as_str(), &[]);
        cache_rows(&mut c, id).is_empty().then_some((again, same))
    });
    assert_eq!((again.status(), same), (first.status(), body));
    let (revalidated, _) = get(url.as_str(), &[("if-none-match", header(&first, "etag"))]);
    assert_eq!(revalidated.status(), 304);

    // Deleting the avatar is heard, and the URL stops working.
    c.execute("SELECT avatar.avatar_delete('users,1')", &[])
        .unwrap();
    eventually(|| (get(url.as_str(), &[]).0.status() == 404).then_some(()));
}

#[test]
fn bad_sizes_are_400() {
    let (db, id) = with_avatar("http_400");
    let (server, urls) = Server::for_db(&db);
    let path = format!(
        "{}/avatar/{}/{}",
        server.base,
        urls.database_key(),
        id.simple()
    );
    for s in ["0", "2049", "-1", "abc", "", "64.5", "99999999999999999999"] {
        let (response, body) = get(&format!("{path}?s={s}"), &[]);
        assert_eq!(response.status(), 400, "s={s}");
        assert!(String::from_utf8(body).unwrap().contains("from 1 to 2048"));
    }
}

#[test]
fn unknown_database_and_unknown_id_look_the_same() {
    let (db, id) = with_avatar("http_404");
    let (server, urls) = Server::for_db(&db);
    let other_db = AvatarUrls::new(&server.base, "some_other_database", SECRET).unwrap();
    let unknown_db = other_db.url(id, "00", 64);
    let unknown_id = urls.url(Uuid::from_u128(7), "00", 64);
    let malformed = format!("{}/avatar/{}/NOT-AN-ID", server.base, urls.database_key());
    let answers: Vec<_> = [unknown_db.as_str(), unknown_id.as_str(), &malformed]
        .iter()
        .map(|url| {
            let (response, body) = get(url, &[]);
            let mut headers: Vec<_> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date")
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            headers.sort();
            (response.status(), headers, body)
        })
        .collect();
    assert_eq!(answers[0].0, 404);
    assert_eq!(answers[0], answers[1], "unknown database vs unknown id");
    assert_eq!(answers[0], answers[2], "malformed id");
    assert!(!String::from_utf8_lossy(&answers[0].2).contains(&db.name));
}

#[test]
fn database_down_is_503_and_the_route_recovers() {
    let (db, id) = with_avatar("http_503");
    let proxy = Proxy::start(cluster_port());
    let options = Options {
        connect_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let server = Server::start(
        vec![database(&db, db.conninfo_via_port(proxy.port))],
        options,
    );
    let url = AvatarUrls::new(&server.base, &db.name, SECRET)
        .unwrap()
        .url(id, "00", 64);

    assert_eq!(get(url.as_str(), &[]).0.status(), 200);
    proxy.down();
    // Until its listener notices (one poll), the route may answer from memory.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let (response, _) = get(url.as_str(), &[]);
        assert_eq!(response.status(), 503);
        assert_eq!(header(&response, "retry-after"), "5");
    }
    proxy.up();
    let (response, body) = get(url.as_str(), &[]);
    assert_eq!(response.status(), 200, "recovered without a restart");
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 64);
}

#[test]
fn the_route_serves_from_a_standby() {
    let (db, id) = with_avatar("http_standby");
    let mut primary = db.connect();
    let sha1 = master_sha1(&mut primary, id);
    wait_for_standby(&mut primary);
    // The standby cannot LISTEN, so the route serves it without its memory.
    let server = Server::start(
        vec![database(&db, db.conninfo_via_port(standby_port()))],
        Options::default(),
    );
    let urls = AvatarUrls::new(&server.base, &db.name, SECRET).unwrap();
    for size in [64, 200] {
        let (response, body) = get(urls.url(id, &sha1, size).as_str(), &[]);
        assert_eq!(response.status(), 200, "{size} px from the standby");
        assert!(image::load_from_memory(&body).is_ok());
    }
}

#[test]
fn deleting_the_owner_row_makes_the_url_404() {
    let (db, id) = with_avatar("http_owner");
    let (_server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1);
         SELECT avatar.attach('users', 'id');",
    )
    .unwrap();
    let url = urls.url(id, &master_sha1(&mut c, id), 64);
    assert_eq!(get(url.as_str(), &[]).0.status(), 200);
    c.batch_execute("DELETE FROM users WHERE id = 1").unwrap();
    eventually(|| (get(url.as_str(), &[]).0.status() == 404).then_some(()));
}

/// Sends `request` raw and returns the status line's code, or None if the
/// server closed the connection without answering.
fn raw_status(base: &str, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn slow_clients_and_oversized_requests_cannot_take_the_route_down() {
    let (db, id) = with_avatar("http_hostile");
    let (server, urls) = Server::for_db(&db);
    let url = urls.url(id, "00", 64);
    let addr = server.base.trim_start_matches("http://").to_string();

    // Clients that start a request and never finish it.
    let slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /avatar/ HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    assert_eq!(
        get(url.as_str(), &[]).0.status(),
        200,
        "served while they hang"
    );
    std::thread::sleep(Duration::from_millis(1500));
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            buf.is_empty() || text.starts_with("HTTP/1.1 408"),
            "closed after the header timeout: {text}"
        );
    }

    let huge_header = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        url.path(),
        "a".repeat(64 << 10)
    );
    let status = raw_status(&server.base, huge_header.as_bytes());
    assert!(matches!(status, None | Some(431)), "{status:?}");
    let huge_path = format!(
        "GET /avatar/{}/x HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(100 << 10)
    );
    let status = raw_status(&server.base, huge_path.as_bytes());
    assert!(
        matches!(status, None | Some(400 | 404 | 414 | 431)),
        "{status:?}"
    );
    for s in ["99999999999999999999999999", "-1", "1e9", "%00"] {
        let odd = format!("{}?s={s}", url.as_str().split('?').next().unwrap());
        assert_eq!(get(&odd, &[]).0.status(), 400, "s={s}");
    }
    let odd_path = format!(
        "{}/avatar/{}/{}",
        server.base, "%2e%2e", "..%2f..%2fetc%2fpasswd"
    );
    assert_eq!(get(&odd_path, &[]).0.status(), 404);
    assert_eq!(get(url.as_str(), &[]).0.status(), 200, "still serving");
}

/// Attacker 2 cannot make a URL's version answer with another version's
/// bytes for long: a URL made for a new image, asked for before the route
/// (or a lagging replica) has the new image, is answered with the bytes it
/// has but `no-cache`, and once the new image is committed it is fetched
/// from the database at once, whatever the route's memory still holds.
#[test]
fn a_version_is_checked_against_the_database_not_memory() {
    let (db, id) = with_avatar("http_stale");
    let (_server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    let old_url = urls.url(id, &master_sha1(&mut c, id), 64);
    let (old, old_bytes) = get(old_url.as_str(), &[]);
    assert_eq!(old.status(), 200);
    // What the next image's version will be: the pipeline is deterministic.
    let next = png(200, 300);
    let probe = set(&mut c, "probe,1", &next).unwrap();
    let new_url = urls.url(id, &master_sha1(&mut c, probe), 64);
    assert_ne!(old_url, new_url);

    // Memory and database both still hold the old image.
    let (early, early_bytes) = get(new_url.as_str(), &[]);
    assert_eq!(early.status(), 200);
    assert_eq!(early_bytes, old_bytes);
    assert_eq!(header(&early, "cache-control"), "public, no-cache");

    // Committed: the new URL gets the new bytes before any notification
    // could have reached the route.
    set(&mut c, "users,1", &next).unwrap();
    let (fresh, fresh_bytes) = get(new_url.as_str(), &[]);
    assert_eq!(fresh.status(), 200);
    assert_ne!(fresh_bytes, old_bytes, "not the old image from memory");
    assert_eq!(
        header(&fresh, "cache-control"),
        "public, max-age=31536000, immutable"
    );
}

/// Sizes are rounded to the served set before they become a memory key or
/// an ETag: `s=57` and `s=60` are one representation, and many spellings of
/// one size cannot push other avatars out of memory.
#[test]
fn sizes_are_quantised_before_they_become_keys() {
    let (db, id) = with_avatar("http_keys");
    let mut c = db.connect();
    let probe = pg_avatar_tests::get(&mut c, id, 64).unwrap().unwrap();
    let options = Options {
        // Room for two or three 64 px JPEGs.
        cache_bytes: probe.len() * 5 / 2,
        ..Options::default()
    };
    let server = Server::start(vec![database(&db, db.conninfo())], options);
    let urls = AvatarUrls::new(&server.base, &db.name, SECRET).unwrap();
    let sha1 = master_sha1(&mut c, id);
    let (a, a_bytes) = get(urls.url(id, &sha1, 57).as_str(), &[]);
    let (b, b_bytes) = get(urls.url(id, &sha1, 60).as_str(), &[]);
    assert_eq!(header(&a, "etag"), header(&b, "etag"));
    assert_eq!(a_bytes, b_bytes);

    // 64 px in memory, then every other spelling of 64.
    let url = urls.url(id, &sha1, 64);
    eventually(|| {
        c.execute("DELETE FROM avatar.avatar_cache", &[]).unwrap();
        get(url.as_str(), &[]);
        cache_rows(&mut c, id).is_empty().then_some(())
    });
    for spelling in 61..=63 {
        get(urls.url(id, &sha1, spelling).as_str(), &[]);
    }
    get(url.as_str(), &[]);
    assert!(
        cache_rows(&mut c, id).is_empty(),
        "64 px was still in memory: no query made a row again"
    );
}

/// Many CDNs ignore `Vary: Accept` and keep whichever format came first,
/// so a URL may name its format; such an answer does not vary by Accept.
#[test]
fn a_url_can_name_its_format() {
    let (db, id) = with_avatar("http_named_format");
    let (server, urls) = Server::for_db(&db);
    let url = urls.url(id, &master_sha1(&mut db.connect(), id), 100);
    let mut tags = std::collections::HashSet::new();
    for (f, mime, format) in [
        ("jpeg", "image/jpeg", image::ImageFormat::Jpeg),
        ("png", "image/png", image::ImageFormat::Png),
        ("webp", "image/webp", image::ImageFormat::WebP),
    ] {
        for accept in ["image/webp", "image/png", "*/*"] {
            let (response, body) = get(&format!("{url}&f={f}"), &[("accept", accept)]);
            assert_eq!(response.status(), 200, "f={f}");
            assert_eq!(
                header(&response, "content-type"),
                mime,
                "f={f} accept {accept}"
            );
            assert_eq!(image::guess_format(&body).unwrap(), format);
            assert_eq!(header(&response, "vary"), "", "f={f}: the URL decides");
            tags.insert(header(&response, "etag").to_string());
        }
    }
    assert_eq!(tags.len(), 3, "one ETag per format: {tags:?}");
    let path = format!(
        "{}/avatar/{}/{}",
        server.base,
        urls.database_key(),
        id.simple()
    );
    for bad in ["gif", "", "JPEG"] {
        assert_eq!(
            get(&format!("{path}?f={bad}"), &[]).0.status(),
            400,
            "f={bad}"
        );
    }
}

/// Any role may NOTIFY. What it sends on pg_avatar's channels may evict the
/// avatar it names (as a real change would), but a malformed payload does
/// not empty the route's memory.
#[test]
fn forged_notifications_do_not_empty_the_memory() {
    let (db, id) = with_avatar("http_forged");
    let (_server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    let url = urls.url(id, &master_sha1(&mut c, id), 64);
    eventually(|| {
        c.execute("DELETE FROM avatar.avatar_cache", &[]).unwrap();
        get(url.as_str(), &[]);
        cache_rows(&mut c, id).is_empty().then_some(())
    });
    let anyone = Role::new(&db, "anyone");
    let mut forger = anyone.connect();
    forger
        .batch_execute(&format!(
            "NOTIFY avatar_changed, 'not json';
             NOTIFY avatar_changed, '{{\"id\": 42}}';
             NOTIFY avatar_address_changed, '[]';
             NOTIFY avatar_changed, '{{\"id\": \"{other}\", \"resource\": \"x\", \"sha1\": null}}';",
            other = Uuid::from_u128(7)
        ))
        .unwrap();
    // Past two of the listener's polls.
    std::thread::sleep(Duration::from_millis(300));
    get(url.as_str(), &[]);
    assert!(
        cache_rows(&mut c, id).is_empty(),
        "served from memory after the forgeries"
    );
}

/// The route's listeners are tasks its handle owns: shutting them down
/// closes their connections, and an application that mounts the route
/// leaves nothing running behind it.
#[test]
fn shutting_the_listeners_down_closes_their_connections() {
    let db = TestDb::new("listeners");
    let mut c = db.connect();
    let others = |c: &mut Client| -> i64 {
        count(
            c,
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_router, listeners) = {
        let _on = runtime.enter();
        pg_avatar_server::router(vec![database(&db, db.conninfo())], Options::default()).unwrap()
    };
    eventually(|| (others(&mut c) == 1).then_some(()));
    runtime.block_on(listeners.shutdown());
    assert_eq!(
        eventually(|| Some(others(&mut c)).filter(|&n| n == 0)),
        0,
        "the listener let go of its connection"
    );

    // Dropping the handle stops them too.
    let (_router, listeners) = {
        let _on = runtime.enter();
        pg_avatar_server::router(vec![database(&db, db.conninfo())], Options::default()).unwrap()
    };
    eventually(|| (others(&mut c) == 1).then_some(()));
    drop(listeners);
    eventually(|| (others(&mut c) == 0).then_some(()));
}

/// A database that accepts connections and never answers (or a network
/// that swallows them) holds a listener in libpq. Shutting the listeners
/// down still returns promptly, and so does dropping the runtime.
#[test]
fn shutdown_does_not_wait_for_a_database_that_never_answers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let connections: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(connections);
    });
    let db = TestDb::new("silent");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Off the runtime: the route needs none to be built.
    let (_router, listeners) = pg_avatar_server::router(
        vec![database(
            &db,
            format!("host=127.0.0.1 port={port} user=nobody dbname=nothing"),
        )],
        Options::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let stopped = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), listeners.shutdown()).await
    });
    assert!(stopped.is_ok(), "shutdown waited on the silent database");
    drop(runtime);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown and the runtime's end took {:?}",
        started.elapsed()
    );
    drop(held);
}

/// A listener whose database backend stops answering (here: stopped with
/// SIGSTOP mid-ping) hears nothing, so the route stops trusting its memory
/// and reads the database again, which still answers through the pool.
#[test]
fn memory_is_not_trusted_from_a_listener_that_stopped_hearing() {
    let (db, id) = with_avatar("quiet_listener");
    let (server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    // Memory answers only a URL of the version it holds.
    let url = urls.url(id, &master_sha1(&mut c, id), 64).to_string();
    assert_eq!(get(&url, &[]).0.status(), 200);
    assert_eq!(get(&url, &[]).0.status(), 200, "from memory now");
    let listener: i32 = eventually(|| {
        c.query_opt(
            "SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND query IN ('LISTEN avatar_address_changed', 'SELECT 1')",
            &[],
        )
        .unwrap()
        .map(|row| row.get(0))
    });
    let signal = |which: &str| {
        let status = std::process::Command::new("kill")
            .args([which, &listener.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {which} {listener}");
    };
    signal("-STOP");
    let resumed = scopeguard(|| signal("-CONT"));
    c.batch_execute("SELECT avatar.avatar_disable('users,1')")
        .unwrap();
    // The listener pings a quiet connection every 2 s, and is trusted for 5 s
    // after it last heard: within about 7 s the route reads the database.
    let mut status = 0;
    for _ in 0..100 {
        status = get(&url, &[]).0.status().as_u16();
        if status == 404 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 404, "the disabled avatar was served from memory");
    drop(resumed);
    drop(server);
}

/// Runs `f` when dropped, even if the test fails first.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Whatever the path or method, the route's answers carry its headers,
/// and a path that does not decode is answered as any unknown avatar.
#[test]
fn every_error_answer_has_the_routes_headers() {
    let (db, _id) = with_avatar("error_headers");
    let (server, urls) = Server::for_db(&db);
    let unknown = format!(
        "{}/avatar/{}/{}",
        server.base,
        urls.database_key(),
        "0".repeat(32)
    );
    let (known_404, known_body) = get(&unknown, &[]);
    let (bad_utf8, bad_body) = get(&format!("{}/avatar/%FF/abc", server.base), &[]);
    assert_eq!(bad_utf8.status(), 404);
    assert_eq!(bad_body, known_body, "the same answer as an unknown id");
    for response in [&known_404, &bad_utf8] {
        assert_eq!(header(response, "x-content-type-options"), "nosniff");
        assert_eq!(header(response, "cache-control"), "no-store");
    }
    let posted = agent().post(&unknown).send_empty().unwrap();
    assert_eq!(posted.status(), 405);
    assert_eq!(header(&posted, "x-content-type-options"), "nosniff");
    assert_eq!(header(&posted, "allow"), "GET, HEAD");
}
