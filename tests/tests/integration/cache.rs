//! The cache across committed, rolled-back, read-only and concurrent
//! transactions: what a single #[pg_test] transaction cannot show.

use std::sync::{Arc, Barrier};
use std::thread;

use pg_avatar_tests::*;

#[test]
fn committed_get_memoizes_and_a_new_set_clears() {
    let db = TestDb::new("memo");
    let mut c = db.connect();
    let id = set(&mut c, "users,42", &png(300, 200)).unwrap();
    let first = get(&mut c, id, 64).unwrap().unwrap();
    let sha1 = master_sha1(&mut c, id);
    assert_eq!(cache_rows(&mut c, id), [(64, sha1.clone())]);

    // Another session sees the committed row and is served from it.
    let mut other = db.connect();
    assert!(get(&mut other, id, 64).unwrap().unwrap() == first);
    assert!(
        get(&mut other, id, 61).unwrap().unwrap() == first,
        "61 quantises to 64"
    );
    assert_eq!(cache_rows(&mut c, id).len(), 1);

    assert_eq!(
        set(&mut other, "users,42", &png(200, 300)).unwrap(),
        id,
        "same id, same URL"
    );
    assert!(cache_rows(&mut c, id).is_empty());
    assert_ne!(master_sha1(&mut c, id), sha1);
}

#[test]
fn a_rolled_back_set_leaves_image_and_cache_intact() {
    let db = TestDb::new("rollback");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(100, 100)).unwrap();
    let before = get(&mut c, id, 32).unwrap().unwrap();
    let sha1 = master_sha1(&mut c, id);

    let mut tx = c.transaction().unwrap();
    tx.query_one("SELECT avatar.avatar_set('users,1', $1)", &[&png(80, 120)])
        .unwrap();
    let cleared: i64 = tx
        .query_one("SELECT count(*) FROM avatar.avatar_cache", &[])
        .unwrap()
        .get(0);
    assert_eq!(cleared, 0, "cleared inside the transaction");
    tx.rollback().unwrap();

    assert_eq!(master_sha1(&mut c, id), sha1);
    assert_eq!(cache_rows(&mut c, id), [(32, sha1)]);
    assert_eq!(get(&mut c, id, 32).unwrap().unwrap(), before);
}

#[test]
fn read_only_transactions_get_images_and_memoize_nothing() {
    let db = TestDb::new("readonly");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(100, 100)).unwrap();
    for begin in [
        "BEGIN; SET TRANSACTION READ ONLY",
        "BEGIN READ ONLY",
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    ] {
        c.batch_execute(begin).unwrap();
        let jpeg = get(&mut c, id, 128).unwrap().expect("an image");
        assert_eq!(&jpeg[..3], b"\xff\xd8\xff");
        c.batch_execute("COMMIT").unwrap();
        assert!(cache_rows(&mut c, id).is_empty(), "{begin}");
    }
    c.batch_execute("SET default_transaction_read_only = on")
        .unwrap();
    assert!(get(&mut c, id, 128).unwrap().is_some());
    assert!(sqlstate(set(&mut c, "users,2", &png(10, 10))).starts_with("25006"));
    c.batch_execute("SET default_transaction_read_only = off")
        .unwrap();
    assert!(cache_rows(&mut c, id).is_empty());
}

#[test]
fn concurrent_cold_gets_all_succeed_and_store_one_row_per_size() {
    const SESSIONS: usize = 16;
    let db = Arc::new(TestDb::new("concurrent"));
    let id = set(&mut db.connect(), "users,1", &png(600, 600)).unwrap();
    let barrier = Arc::new(Barrier::new(SESSIONS));
    let results: Vec<Vec<u8>> = (0..SESSIONS)
        .map(|_| {
            let (db, barrier) = (db.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = db.connect();
                barrier.wait();
                get(&mut c, id, 256)
                    .expect("no session sees an error")
                    .expect("an image")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "every session got the same image"
    );
    let mut c = db.connect();
    let sha1 = master_sha1(&mut c, id);
    // 256 px is made from the 512 px rendition, which is memoized too.
    assert_eq!(cache_rows(&mut c, id), [(256, sha1.clone()), (512, sha1)]);
}

#[test]
fn a_reader_with_only_avatar_get_fills_the_cache_but_touches_nothing_else() {
    let db = TestDb::new("reader");
    let mut admin = db.connect();
    let reader = format!("{}_reader", db.name);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN;
             GRANT EXECUTE ON FUNCTION avatar.avatar_get(uuid, integer) TO {reader};"
        ))
        .unwrap();
    let id = set(&mut admin, "users,1", &png(100, 100)).unwrap();

    let mut c = connect(&db.conninfo_as(&reader));
    assert!(get(&mut c, id, 48).unwrap().is_some());
    assert_eq!(
        cache_rows(&mut admin, id).len(),
        1,
        "the definer function wrote the cache"
    );
    for denied in [
        "SELECT * FROM avatar.avatar",
        "SELECT * FROM avatar.avatar_cache",
        "SELECT avatar.avatar_set('users,1', '\\x00')",
        "SELECT avatar.avatar_delete('users,1')",
        "SELECT avatar.avatar_id('users,1')",
        "DELETE FROM avatar.avatar_cache",
    ] {
        assert_eq!(sqlstate(c.batch_execute(denied)), "42501", "{denied}");
    }
    drop(c);
    admin
        .batch_execute(&format!("DROP OWNED BY {reader}; DROP ROLE {reader}"))
        .unwrap();
}

/// Renditions are shared by everyone, so no session's setting may change
/// them: a role that may only read avatars cannot lower the quality that
/// everyone is then served, before or after the library is loaded.
#[test]
fn a_sessions_settings_do_not_change_what_everyone_is_served() {
    let db = TestDb::new("settings");
    let mut admin = db.connect();
    let id = set(&mut admin, "users,1", &png(400, 400)).unwrap();
    let reader = Role::as_in_readme(&db, "reader", "avatar_reader");
    fn get_as(c: &mut impl postgres::GenericClient, id: Uuid, size: i32) -> Vec<u8> {
        c.query_one(
            "SELECT image FROM avatar.avatar_rendition($1, $2, 'jpeg')",
            &[&id, &size],
        )
        .unwrap()
        .get(0)
    }
    // What a session with no settings of its own is served, made in a
    // transaction that is rolled back so nothing is memoized.
    let mut expected = vec![];
    {
        let mut tx = admin.transaction().unwrap();
        for size in [64, 100] {
            expected.push(get_as(&mut tx, id, size));
        }
        tx.rollback().unwrap();
    }
    let mut c = reader.connect();
    // Before pg_avatar is loaded into this backend, the setting is a
    // placeholder; it must not take effect when the library loads.
    let early = c.batch_execute("SET pg_avatar.jpeg_quality = 1");
    let first = get_as(&mut c, id, 64);
    assert_eq!(
        sqlstate(c.batch_execute("SET pg_avatar.jpeg_quality = 1")),
        "42501",
        "only a superuser may change the quality"
    );
    assert_eq!(
        sqlstate(c.batch_execute(&format!(
            "ALTER ROLE {} SET pg_avatar.jpeg_quality = 1",
            reader.name
        ))),
        "42501"
    );
    let second = get_as(&mut c, id, 100);
    assert_eq!(
        [first, second],
        [expected[0].clone(), expected[1].clone()],
        "the reader was served what everyone is (early SET: {early:?})"
    );
    assert_eq!(
        get_as(&mut admin, id, 64),
        expected[0],
        "and so is everyone"
    );
}

/// `cached_sizes` counts sizes, not rows: three formats of one size are
/// one size.
#[test]
fn info_counts_cached_sizes_not_rows() {
    let db = TestDb::new("info");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(1000, 1000)).unwrap();
    for format in ["jpeg", "png", "webp"] {
        c.execute("SELECT avatar.avatar_get($1, 100, $2)", &[&id, &format])
            .unwrap();
    }
    let sizes: i32 = c
        .query_one("SELECT cached_sizes FROM avatar.avatar_info($1)", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(
        sizes, 2,
        "100 px, and the 512 px rendition it was made from"
    );
}
