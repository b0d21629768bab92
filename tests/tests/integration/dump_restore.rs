//! Avatars survive pg_dump and pg_restore into a fresh cluster byte for
//! byte, with the same ids, so public URLs keep working.

use std::process::Command;

use pg_avatar_tests::*;

type Rows = Vec<(Uuid, String, Vec<u8>, i32, String, String, Option<String>)>;
type CacheRows = Vec<(Uuid, i32, String, String, Vec<u8>)>;

fn snapshot(c: &mut Client) -> (Rows, CacheRows) {
    let avatars = c
        .query(
            "SELECT id, resource, image, width, sha1, rating, description
               FROM avatar.avatar ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    let cache = c
        .query(
            "SELECT avatar_id, size, format, sha1, image FROM avatar.avatar_cache ORDER BY 1, 2, 3",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    (avatars, cache)
}

fn populated() -> (TestDb, Uuid) {
    let db = TestDb::new("dumped");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(300, 200)).unwrap();
    set(&mut c, "users,2", &jpeg(64, 64)).unwrap();
    c.execute(
        "SELECT avatar.avatar_set_email('users,1', 'ada@example.org')",
        &[],
    )
    .unwrap();
    c.batch_execute(
        "SELECT avatar.avatar_set_rating('users,1', 'pg');
         SELECT avatar.avatar_set_description('users,1', 'Ada, in a hat');",
    )
    .unwrap();
    for size in [32, 64, 128] {
        get(&mut c, id, size).unwrap();
    }
    c.execute("SELECT avatar.avatar_get($1, 64, 'webp')", &[&id])
        .unwrap();
    // Attachments, of a plain table and a partitioned one.
    c.batch_execute(
        "CREATE TABLE users (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1), (2);
         SELECT avatar.attach('users', 'id');
         CREATE SCHEMA app;
         CREATE TABLE app.members (id bigint, region text) PARTITION BY LIST (region);
         CREATE TABLE app.members_eu PARTITION OF app.members FOR VALUES IN ('eu');
         SELECT avatar.attach('app.members', 'id');",
    )
    .unwrap();
    (db, id)
}

fn attachments(c: &mut Client) -> Vec<String> {
    c.query(
        "SELECT relid::text || ' ' || prefix || ' ' || key_columns::text
           FROM avatar.avatar_attachment ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn run(mut command: Command) {
    let out = command.output().expect("run a PostgreSQL client program");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_same(source: &TestDb, restored: &TestDb, id: Uuid) {
    let before = snapshot(&mut source.connect());
    let mut c = restored.connect();
    let after = snapshot(&mut c);
    assert_eq!(before.0.len(), 2);
    assert_eq!(
        (before.0[0].5.as_str(), before.0[1].5.as_str()),
        if before.0[0].1 == "users,1" {
            ("pg", "g")
        } else {
            ("g", "pg")
        },
        "ratings and alt text are dumped too"
    );
    assert_eq!(before.1.len(), 4, "three JPEG sizes and a WebP");
    assert!(
        before == after,
        "every avatar and cache row comes back byte for byte"
    );
    let emails = |c: &mut Client| -> Vec<String> {
        c.query("SELECT t::text FROM avatar.avatar_email t ORDER BY 1", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let source_emails = emails(&mut source.connect());
    assert_eq!(source_emails.len(), 1);
    assert_eq!(emails(&mut c), source_emails, "address digests too");
    // And the restored cache is live: a hit returns the stored bytes.
    let cached = before
        .1
        .iter()
        .find(|row| row.1 == 64 && row.2 == "jpeg")
        .unwrap()
        .4
        .clone();
    assert_eq!(get(&mut c, id, 64).unwrap().unwrap(), cached);

    // Attachments come back, and act: the restored triggers find them.
    let expected = attachments(&mut source.connect());
    assert_eq!(expected, ["app.members members {id}", "users users {id}"]);
    assert_eq!(attachments(&mut c), expected);
    c.batch_execute("DELETE FROM users WHERE id = 2").unwrap();
    let left: Option<Uuid> = c
        .query_one("SELECT avatar.avatar_id('users,2')", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, None, "deleting a restored owner row wipes its avatar");
}

/// Dumps a populated database in `format`, restores it into an empty one
/// with `restorer` (which reads the dump file), and compares.
fn round_trip(format: &str, restorer: impl FnOnce(&std::path::Path, &TestDb) -> Command) {
    let (source, id) = populated();
    round_trip_of(&source, id, &source.conninfo(), format, restorer);
}

fn round_trip_of(
    source: &TestDb,
    id: Uuid,
    dump_as: &str,
    format: &str,
    restorer: impl FnOnce(&std::path::Path, &TestDb) -> Command,
) {
    let restored = TestDb::in_restore_cluster(&format!("restored_{format}"));
    let file = std::env::temp_dir().join(format!("{}.{format}", source.name));
    let mut dump = pg_program("pg_dump");
    dump.arg(format!("--format={format}"))
        .arg("--file")
        .arg(&file)
        .args(["--dbname", dump_as]);
    run(dump);
    run(restorer(&file, &restored));
    let _ = std::fs::remove_file(&file);
    assert_same(source, &restored, id);
}

fn pg_restore(file: &std::path::Path, restored: &TestDb) -> Command {
    let mut restore = pg_program("pg_restore");
    restore
        .args(["--exit-on-error", "--dbname", &restored.conninfo()])
        .arg(file);
    restore
}

#[test]
fn custom_format_round_trip() {
    round_trip("custom", pg_restore);
}

/// Backups need not run as a superuser: a member of pg_read_all_data can
/// read the extension's tables, which grant nothing to anyone else.
#[test]
fn a_non_superuser_can_dump_an_app_database() {
    let (source, id) = populated();
    let backup = format!("{}_backup", source.name);
    let mut c = source.connect();
    c.batch_execute(&format!(
        "CREATE ROLE {backup} LOGIN; GRANT pg_read_all_data TO {backup};"
    ))
    .unwrap();
    round_trip_of(
        &source,
        id,
        &source.conninfo_as(&backup),
        "custom",
        pg_restore,
    );
    c.batch_execute(&format!("DROP ROLE {backup}")).unwrap();
}

#[test]
fn plain_format_round_trip() {
    round_trip("plain", |file, restored| {
        let mut psql = pg_program("psql");
        psql.args([
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--dbname",
            &restored.conninfo(),
            "--file",
        ])
        .arg(file);
        psql
    });
}
