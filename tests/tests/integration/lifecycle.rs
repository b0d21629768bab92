//! Disable, enable, wipe and delete, addresses, defaults, and the
//! notifications each change sends.

use std::time::Duration;

use diesel_avatar::changes::{Change, Changes};
use pg_avatar_tests::*;

fn sha1_of(c: &mut Client, id: Uuid) -> Option<String> {
    c.query_one("SELECT avatar.avatar_sha1($1)", &[&id])
        .unwrap()
        .get(0)
}

fn by_digest(c: &mut Client, digest: &str) -> Option<Uuid> {
    c.query_one("SELECT avatar.avatar_by_digest($1)", &[&digest])
        .unwrap()
        .get(0)
}

fn md5_hex(text: &str) -> String {
    let mut c = connect(&format!(
        "{} dbname=postgres",
        std::env::var("PG_AVATAR_TEST_CONNINFO").unwrap()
    ));
    c.query_one("SELECT md5($1)", &[&text]).unwrap().get(0)
}

#[test]
fn disable_keeps_the_image_and_id_enable_serves_them_again_wipe_forgets() {
    let db = TestDb::new("lifecycle");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(200, 200)).unwrap();
    let before = get(&mut c, id, 64).unwrap().unwrap();
    c.execute(
        "SELECT avatar.avatar_set_email('users,1', 'Ada@Example.org ')",
        &[],
    )
    .unwrap();

    let disabled: bool = c
        .query_one("SELECT avatar.avatar_disable('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(disabled);
    assert_eq!(get(&mut c, id, 64).unwrap(), None, "not served");
    assert_eq!(sha1_of(&mut c, id), None);
    assert_eq!(by_digest(&mut c, &md5_hex("ada@example.org")), None);
    let placeholder: Vec<u8> = c
        .query_one(
            "SELECT avatar.avatar_get_or_default('users,1', 64, 'mm')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_ne!(placeholder, before, "the placeholder instead");
    let again: bool = c
        .query_one("SELECT avatar.avatar_disable('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(!again, "already disabled");

    let enabled: bool = c
        .query_one("SELECT avatar.avatar_enable('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(enabled);
    assert_eq!(
        get(&mut c, id, 64).unwrap().unwrap(),
        before,
        "same id, same image"
    );
    assert_eq!(by_digest(&mut c, &md5_hex("ada@example.org")), Some(id));

    let wiped: bool = c
        .query_one("SELECT avatar.avatar_wipe('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(wiped);
    assert_eq!(get(&mut c, id, 64).unwrap(), None);
    let rows: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM avatar.avatar) + (SELECT count(*) FROM avatar.avatar_cache)
                  + (SELECT count(*) FROM avatar.avatar_email)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "image, cache and addresses are gone");
    let enabled: bool = c
        .query_one("SELECT avatar.avatar_enable('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(!enabled, "nothing left to enable");
}

#[test]
fn addresses_are_stored_as_digests_only() {
    let db = TestDb::new("emails");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(100, 100)).unwrap();
    for address in ["ada@example.org", "  ADA@work.example "] {
        c.execute("SELECT avatar.avatar_set_email('users,1', $1)", &[&address])
            .unwrap();
    }
    let stored: String = c
        .query_one(
            "SELECT string_agg(t::text, ' ') FROM avatar.avatar_email t",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        !stored.to_lowercase().contains("ada"),
        "no address in {stored}"
    );
    assert_eq!(
        by_digest(&mut c, &md5_hex("ada@work.example")),
        Some(id),
        "trimmed, lower-cased"
    );
    let sha256: String = c
        .query_one("SELECT encode(sha256('ada@example.org'), 'hex')", &[])
        .unwrap()
        .get(0);
    assert_eq!(by_digest(&mut c, &sha256), Some(id));
    assert_eq!(by_digest(&mut c, &sha256.to_uppercase()), Some(id));
    assert_eq!(by_digest(&mut c, &md5_hex("nobody@example.org")), None);

    // An address belongs to one resource: setting it again moves it.
    let other = set(&mut c, "users,2", &png(90, 90)).unwrap();
    c.execute(
        "SELECT avatar.avatar_set_email('users,2', 'ada@example.org')",
        &[],
    )
    .unwrap();
    assert_eq!(by_digest(&mut c, &md5_hex("ada@example.org")), Some(other));
    let removed: bool = c
        .query_one(
            "SELECT avatar.avatar_unset_email('users,2', 'Ada@example.org')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(removed);
    assert_eq!(by_digest(&mut c, &md5_hex("ada@example.org")), None);

    for (sql, state) in [
        (
            "SELECT avatar.avatar_set_email('users,1', 'not an address')",
            "22023",
        ),
        ("SELECT avatar.avatar_by_digest('xyz')", "22023"),
        ("SELECT avatar.avatar_default('unicorn', 'x', 64)", "22023"),
        ("SELECT avatar.avatar_default('mm', 'x', 0)", "22023"),
        ("SELECT avatar.avatar_default_exact('mm', 'x', 0)", "22023"),
        (
            "SELECT avatar.avatar_default_exact('mm', 'x', 2049)",
            "22023",
        ),
        (
            "SELECT avatar.avatar_default_exact('unicorn', 'x', 64)",
            "22023",
        ),
        (
            "SELECT * FROM avatar.avatar_rendition_exact(gen_random_uuid(), 0, 'jpeg')",
            "22023",
        ),
        (
            "SELECT * FROM avatar.avatar_rendition_exact(gen_random_uuid(), -7, 'jpeg')",
            "22023",
        ),
        (
            "SELECT * FROM avatar.avatar_rendition_exact(gen_random_uuid(), 64, 'gif')",
            "22023",
        ),
        ("SELECT avatar.avatar_by_digest(md5('a'), 'G')", "22023"),
    ] {
        assert_eq!(sqlstate(c.batch_execute(sql)), state, "{sql}");
    }
}

#[test]
fn every_change_is_notified() {
    let db = TestDb::new("notify");
    let mut changes = Changes::listen(&db.conninfo()).expect("subscribed");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(100, 100)).unwrap();
    let first = master_sha1(&mut c, id);
    set(&mut c, "users,1", &png(80, 100)).unwrap();
    let second = master_sha1(&mut c, id);
    get(&mut c, id, 64).unwrap(); // memoizing is not a change
    for sql in [
        "SELECT avatar.avatar_disable('users,1')",
        "SELECT avatar.avatar_enable('users,1')",
        "SELECT avatar.avatar_delete('users,1')",
    ] {
        c.batch_execute(sql).unwrap();
    }
    set(&mut c, "users,2", &png(100, 100)).unwrap();
    c.batch_execute("SELECT avatar.avatar_wipe('users,2')")
        .unwrap();

    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 7 && std::time::Instant::now() < deadline {
        seen.push(changes.next().unwrap().unwrap());
    }
    let sha1s: Vec<(String, Option<String>)> = seen
        .iter()
        .map(|c: &Change| (c.resource.clone(), c.sha1.clone()))
        .collect();
    assert_eq!(
        sha1s[..5],
        [
            ("users,1".to_string(), Some(first)),
            ("users,1".to_string(), Some(second.clone())),
            ("users,1".to_string(), None),
            ("users,1".to_string(), Some(second)),
            ("users,1".to_string(), None),
        ]
    );
    assert!(seen[..5].iter().all(|change| change.id == id));
    assert_eq!(sha1s[6], ("users,2".to_string(), None), "wiped");
}
