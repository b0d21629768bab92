//! Shared fixtures: a throwaway database per test on the cluster that
//! `./run.sh test` starts, and sample images.

pub mod route;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use avatar_pipeline::samples;
use image::{DynamicImage, ImageFormat};
pub use postgres::{Client, Error, NoTls};
pub use uuid::Uuid;

/// How to reach the test cluster, from the environment `./run.sh test` sets.
fn base_conninfo() -> String {
    std::env::var("PG_AVATAR_TEST_CONNINFO").expect(
        "PG_AVATAR_TEST_CONNINFO is not set: run these tests through `./run.sh test`, which starts the cluster",
    )
}

/// `conninfo` with its port replaced.
fn with_port(conninfo: &str, port: &str) -> String {
    let mut parts: Vec<&str> = conninfo
        .split_whitespace()
        .filter(|kv| !kv.starts_with("port="))
        .collect();
    let port = format!("port={port}");
    parts.push(&port);
    parts.join(" ")
}

/// The cluster's own client programs (pg_dump, pg_restore, psql).
pub fn pg_program(name: &str) -> Command {
    let bindir = std::env::var("PG_AVATAR_PG_BINDIR")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Command::new(PathBuf::from(bindir).join(name))
}

/// The port of the streaming standby of the test cluster that
/// `./run.sh test` starts.
pub fn standby_port() -> u16 {
    std::env::var("PG_AVATAR_TEST_STANDBY_PORT")
        .expect("PG_AVATAR_TEST_STANDBY_PORT is not set: run these tests through `./run.sh test`")
        .parse()
        .expect("a port number")
}

/// Waits until the standby has replayed everything `primary` has written,
/// such as the CREATE DATABASE a test just ran: check before connecting.
pub fn wait_for_standby(primary: &mut Client) {
    let mut standby = connect(&format!(
        "{} dbname=postgres",
        with_port(&base_conninfo(), &standby_port().to_string())
    ));
    let lsn: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .unwrap()
        .get(0);
    for _ in 0..400 {
        let caught_up: bool = standby
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .unwrap()
            .get(0);
        if caught_up {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the standby did not replay {lsn} within 10 s");
}

pub fn connect(conninfo: &str) -> Client {
    Client::connect(conninfo, NoTls).unwrap_or_else(|e| panic!("connect to {conninfo}: {e}"))
}

/// A database of its own, with the extension, dropped at the end.
pub struct TestDb {
    pub name: String,
    /// How to reach its cluster, without a database name.
    server: String,
}

impl TestDb {
    pub fn new(label: &str) -> TestDb {
        let db = TestDb::without_extension(label);
        db.connect()
            .batch_execute("CREATE EXTENSION pg_avatar")
            .expect("CREATE EXTENSION");
        db
    }

    /// For restores, whose dump brings its own CREATE EXTENSION.
    pub fn without_extension(label: &str) -> TestDb {
        TestDb::create(label, base_conninfo())
    }

    /// An empty database on a cluster of its own, which has never seen
    /// pg_avatar's data: where dumps are restored.
    pub fn in_restore_cluster(label: &str) -> TestDb {
        let port = std::env::var("PG_AVATAR_TEST_RESTORE_PORT").expect(
            "PG_AVATAR_TEST_RESTORE_PORT is not set: run these tests through `./run.sh test`",
        );
        TestDb::create(label, with_port(&base_conninfo(), &port))
    }

    fn create(label: &str, server: String) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t_{label}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        connect(&server)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        TestDb { name, server }
    }

    pub fn conninfo(&self) -> String {
        format!("{} dbname={}", self.server, self.name)
    }

    /// The same database reached through another port (a proxy, a standby).
    pub fn conninfo_via_port(&self, port: u16) -> String {
        format!(
            "{} dbname={}",
            with_port(&self.server, &port.to_string()),
            self.name
        )
    }

    pub fn conninfo_as(&self, user: &str) -> String {
        format!("{} user={user}", self.conninfo())
    }

    pub fn connect(&self) -> Client {
        connect(&self.conninfo())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.server, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    samples::encode(
        &DynamicImage::ImageRgb8(samples::scene(width, height)),
        ImageFormat::Png,
    )
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    samples::encode(
        &DynamicImage::ImageRgb8(samples::scene(width, height)),
        ImageFormat::Jpeg,
    )
}

pub fn set(c: &mut Client, resource: &str, image: &[u8]) -> Result<Uuid, Error> {
    c.query_one("SELECT avatar.avatar_set($1, $2)", &[&resource, &image])
        .map(|r| r.get(0))
}

pub fn get(c: &mut Client, id: Uuid, size: i32) -> Result<Option<Vec<u8>>, Error> {
    c.query_one("SELECT avatar.avatar_get($1, $2)", &[&id, &size])
        .map(|r| r.get(0))
}

/// Cache rows of an avatar, as (size, sha1 of the master it came from).
pub fn cache_rows(c: &mut Client, id: Uuid) -> Vec<(i32, String)> {
    c.query(
        "SELECT size, sha1 FROM avatar.avatar_cache WHERE avatar_id = $1 ORDER BY size",
        &[&id],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The public id of `resource`'s avatar, or `None`.
pub fn avatar_of(c: &mut Client, resource: &str) -> Option<Uuid> {
    c.query_one("SELECT avatar.avatar_id($1)", &[&resource])
        .unwrap()
        .get(0)
}

/// The one `bigint` a query such as `SELECT count(*) …` returns.
pub fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

pub fn master_sha1(c: &mut Client, id: Uuid) -> String {
    c.query_one("SELECT sha1 FROM avatar.avatar WHERE id = $1", &[&id])
        .unwrap()
        .get(0)
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(result: Result<impl std::fmt::Debug, Error>) -> String {
    let error = result.expect_err("the statement should have failed");
    error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error}"))
        .code()
        .code()
        .to_string()
}

/// Where a test's tracing subscriber writes, to be read back.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Everything the route and the fallback have logged in this process, at
/// every level: the tests are one binary, and a process has one subscriber.
/// Only pg_avatar's own crates: what its HTTP client logs of its own
/// connections is not the route's to answer for.
pub fn logs() -> &'static Captured {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let ours = tracing_subscriber::filter::Targets::new()
            .with_target("pg_avatar_server", tracing::Level::TRACE)
            .with_target("pg_avatar", tracing::Level::TRACE)
            .with_target("diesel_avatar", tracing::Level::TRACE);
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .with(ours)
            .init();
        logs
    })
}

/// A login role for one test, dropped (with everything it owns in `db`)
/// when the test ends, whatever the test made it.
pub struct Role {
    pub name: String,
    db: String,
    server: String,
}

impl Role {
    pub fn new(db: &TestDb, label: &str) -> Role {
        let name = format!("{}_{label}", db.name);
        db.connect()
            .batch_execute(&format!("CREATE ROLE {name} LOGIN"))
            .expect("CREATE ROLE");
        Role {
            name,
            db: db.conninfo(),
            server: db.server.clone(),
        }
    }

    /// A role holding exactly the grants the README recommends for
    /// `readme_role` (`avatar_reader`, `app` or `app_owner`).
    pub fn as_in_readme(db: &TestDb, label: &str, readme_role: &str) -> Role {
        let role = Role::new(db, label);
        let mut admin = db.connect();
        for grant in readme_grants(readme_role) {
            admin
                .batch_execute(
                    &grant.replace(&format!(" TO {readme_role}"), &format!(" TO {}", role.name)),
                )
                .unwrap_or_else(|e| panic!("the README's grant failed: {grant}: {e}"));
        }
        role
    }

    pub fn connect(&self) -> Client {
        connect(&format!("{} user={}", self.db, self.name))
    }

    pub fn is_superuser(&self) -> bool {
        connect(&self.db)
            .query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1",
                &[&self.name],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.db, NoTls) {
            let _ = c.batch_execute(&format!("DROP OWNED BY {} CASCADE", self.name));
        }
        if let Ok(mut c) = Client::connect(&self.server, NoTls) {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

/// The `GRANT` statements the README's "Privileges" section gives
/// `role`, exactly as written there, so the tests run what users copy.
pub fn readme_grants(role: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Privileges")
        .nth(1)
        .expect("the README has a Privileges section");
    let block = section
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Privileges section starts with an SQL block");
    let statements: Vec<String> = block
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.starts_with("GRANT ") && s.ends_with(&format!(" TO {role}")))
        .collect();
    assert!(
        !statements.is_empty(),
        "the README grants nothing to {role}"
    );
    statements
}

/// A field of /proc/PID/status (VmRSS, VmHWM, VmSize), in bytes: what a
/// backend of the test cluster, which runs on this machine, holds.
pub fn status_bytes(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the backend runs on this machine");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// A connection, and the pid of its backend.
pub fn backend(db: &TestDb) -> (Client, i32) {
    let mut c = db.connect();
    // Loaded first, so the library's own pages are not counted.
    c.batch_execute("SELECT avatar.avatar_size(1)").unwrap();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    (c, pid)
}
