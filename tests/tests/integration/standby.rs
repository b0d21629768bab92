//! A hot standby of the test cluster serves avatars, cached or not, and
//! writes nothing; once promoted, it memoizes again.

use pg_avatar_tests::*;

fn side(jpeg: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(jpeg).unwrap();
    (image.width(), image.height())
}

#[test]
fn a_standby_serves_cached_and_uncached_sizes_and_writes_nothing() {
    let db = TestDb::new("standby");
    let mut primary = db.connect();
    let id = set(&mut primary, "users,1", &png(900, 700)).unwrap();
    let cached = get(&mut primary, id, 64).unwrap().unwrap();
    let rows = cache_rows(&mut primary, id);
    assert_eq!(rows.len(), 2, "64 px and the 512 px it was made from");

    wait_for_standby(&mut primary);
    let mut standby = connect(&db.conninfo_via_port(standby_port()));
    let in_recovery: bool = standby
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(in_recovery);

    assert_eq!(get(&mut standby, id, 64).unwrap().unwrap(), cached);
    for size in [32, 128, 300, 1024] {
        let jpeg = get(&mut standby, id, size).unwrap().unwrap();
        let expected: i32 = standby
            .query_one("SELECT avatar.avatar_size($1)", &[&size])
            .unwrap()
            .get(0);
        let expected = expected as u32;
        assert_eq!(side(&jpeg), (expected, expected), "{size} px");
    }
    assert_eq!(cache_rows(&mut standby, id), rows, "nothing written");
    // Same bytes as the primary makes: the standby is not a fork.
    let on_standby = get(&mut standby, id, 128).unwrap().unwrap();
    assert_eq!(get(&mut primary, id, 128).unwrap().unwrap(), on_standby);
    assert_eq!(get(&mut standby, Uuid::nil(), 64).unwrap(), None);
}

/// Leaves a database behind for the promotion check that `./run.sh test`
/// runs after promoting the standby (see `after_promotion_it_memoizes`).
#[test]
fn prepare_promotion_check() {
    let mut admin = connect(&format!(
        "{} dbname=postgres",
        std::env::var("PG_AVATAR_TEST_CONNINFO").unwrap()
    ));
    // Two statements: neither may run inside a transaction block.
    for sql in [
        "DROP DATABASE IF EXISTS promotion_check",
        "CREATE DATABASE promotion_check",
    ] {
        admin.batch_execute(sql).unwrap();
    }
    let conninfo = format!(
        "{} dbname=promotion_check",
        std::env::var("PG_AVATAR_TEST_CONNINFO").unwrap()
    );
    let mut c = connect(&conninfo);
    c.batch_execute("CREATE EXTENSION pg_avatar").unwrap();
    set(&mut c, "users,1", &png(300, 300)).unwrap();
    wait_for_standby(&mut c);
}

fn port_of(conninfo: &str) -> String {
    conninfo
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
        .to_string()
}

#[test]
#[ignore = "run by ./run.sh test after it promotes the standby"]
fn after_promotion_it_memoizes() {
    let base = std::env::var("PG_AVATAR_TEST_CONNINFO").unwrap();
    let conninfo = format!("{base} dbname=promotion_check").replace(
        &format!("port={}", port_of(&base)),
        &format!("port={}", standby_port()),
    );
    let mut c = connect(&conninfo);
    let in_recovery: bool = c
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(!in_recovery, "promoted");
    let id: Uuid = c
        .query_one("SELECT avatar.avatar_id('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(cache_rows(&mut c, id).is_empty());
    get(&mut c, id, 64).unwrap().unwrap();
    assert_eq!(
        cache_rows(&mut c, id).len(),
        1,
        "memoized on the new primary"
    );
    set(&mut c, "users,2", &png(100, 100)).unwrap();
}
