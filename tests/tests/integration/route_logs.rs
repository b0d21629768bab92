//! Nothing the route says, to clients or in its logs, names a database or
//! holds a connection string: not for unknown databases or ids, not when
//! the database goes away, and not when its listener loses its connection.

use std::time::Duration;

use diesel_avatar::AvatarUrls;
use pg_avatar_server::Options;
use pg_avatar_tests::route::{cluster_port, database, get, Proxy, Server, SECRET};
use pg_avatar_tests::*;

#[test]
fn no_answer_or_log_line_reveals_a_database() {
    let logs = logs();

    let db = TestDb::new("logs_secret_name");
    let id = set(&mut db.connect(), "users,1", &png(100, 100)).unwrap();
    let proxy = Proxy::start(cluster_port());
    let via_proxy = db.conninfo_via_port(proxy.port);
    let server = Server::start(
        vec![database(&db, via_proxy.clone())],
        Options {
            connect_timeout: Duration::from_millis(300),
            ..Options::default()
        },
    );
    let urls = AvatarUrls::new(&server.base, &db.name, SECRET).unwrap();
    let other = AvatarUrls::new(&server.base, "another_db", SECRET).unwrap();
    let mut answers = Vec::new();
    let mut ask = |url: &str| {
        let (response, body) = get(url, &[]);
        answers.push(format!(
            "{:?} {}",
            response.headers(),
            String::from_utf8_lossy(&body)
        ));
        response.status()
    };
    assert_eq!(ask(urls.url(id, "00", 64).as_str()), 200);
    assert_eq!(ask(urls.url(Uuid::nil(), "00", 64).as_str()), 404);
    assert_eq!(ask(other.url(id, "00", 64).as_str()), 404);
    assert_eq!(ask(&format!("{}/avatar/{}/x", server.base, db.name)), 404);
    proxy.down();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ask(urls.url(id, "00", 128).as_str()), 503);
    std::thread::sleep(Duration::from_millis(500));
    proxy.up();
    std::thread::sleep(Duration::from_millis(2500));

    let logs = logs.text();
    assert!(
        logs.contains("database unavailable"),
        "the 503 was logged:\n{logs}"
    );
    for secret in [
        db.name.as_str(),
        "host=",
        "port=",
        "dbname",
        "user=",
        via_proxy.as_str(),
    ] {
        for line in logs.lines().chain(answers.iter().map(String::as_str)) {
            assert!(!line.contains(secret), "{secret:?} leaked: {line}");
        }
    }
}
