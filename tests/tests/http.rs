//! The avatar route over real HTTP, against the real extension.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_avatar::http::{Database, Options};
use diesel_avatar::AvatarUrls;
use pg_avatar_tests::*;
use ureq::http::Response;
use ureq::Body;

const SECRET: &[u8] = b"http-test-secret-0123456789";

/// The route on 127.0.0.1, on a runtime of its own.
struct Server {
    base: String,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(databases: Vec<Database>, options: Options) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = diesel_avatar::http::router(databases, options).unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            base,
            _runtime: runtime,
        }
    }

    fn for_db(db: &TestDb) -> (Server, AvatarUrls) {
        let server = Server::start(vec![database(db, db.conninfo())], Options::default());
        let urls = AvatarUrls::new(&server.base, &db.name, SECRET).unwrap();
        (server, urls)
    }
}

fn database(db: &TestDb, url: String) -> Database {
    Database {
        name: db.name.clone(),
        url,
        secret: SECRET.to_vec(),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(url: &str, headers: &[(&str, &str)]) -> (Response<Body>, Vec<u8>) {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    let body = response.body_mut().read_to_vec().unwrap();
    (response, body)
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

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
    for query in ["?s=128", "?s=128&v=000000000000"] {
        let (response, _) = get(&format!("{path}{query}"), &[]);
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=604800",
            "{query}"
        );
    }
    let (response, body) = get(&path, &[]);
    assert_eq!(response.status(), 200);
    assert_eq!(
        image::load_from_memory(&body).unwrap().width(),
        64,
        "the default size"
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
    assert_eq!(header(&stale, "cache-control"), "public, max-age=604800");
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
    panic!("the route still served the old state after 2 s");
}

#[test]
fn served_from_memory_until_the_avatar_changes_or_goes() {
    let (db, id) = with_avatar("http_memory");
    let (_server, urls) = Server::for_db(&db);
    let mut c = db.connect();
    let url = urls.url(id, &master_sha1(&mut c, id), 64);
    let (first, body) = get(url.as_str(), &[]);
    assert_eq!(first.status(), 200);

    // A query-free hit: even with every cached row gone, the bytes match.
    c.execute("DELETE FROM avatar.avatar_cache", &[]).unwrap();
    let (again, same) = eventually(|| {
        let (again, same) = get(url.as_str(), &[]);
        (cache_rows(&mut c, id).is_empty()).then_some((again, same))
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

/// A TCP proxy in front of the cluster that the test can take down.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                open2
                    .lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, up, open }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0; 16384];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn cluster_port() -> u16 {
    std::env::var("PG_AVATAR_TEST_CONNINFO")
        .unwrap()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .expect("a port in PG_AVATAR_TEST_CONNINFO")
        .parse()
        .unwrap()
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
