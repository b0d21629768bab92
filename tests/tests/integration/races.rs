//! Races between avatar_get's memoizing and avatar_set, ordered step by step
//! with locks so each interleaving happens every time.

use std::thread;
use std::time::Duration;

use pg_avatar_tests::*;
use postgres::Client;

/// Waits until backend `pid` is blocked on a lock.
fn wait_until_blocked(observer: &mut Client, pid: i32) {
    for _ in 0..200 {
        let waiting: bool = observer
            .query_one(
                "SELECT coalesce(wait_event_type IN ('Lock', 'Advisory'), false)
                   FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .get(0);
        if waiting {
            return;
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("backend {pid} never blocked");
}

fn pid(c: &mut Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0)
}

/// What `avatar_get` would make of the current master now, from nothing:
/// rendered in a transaction that drops every cached row and rolls back.
fn rendered_afresh(c: &mut Client, id: uuid::Uuid, size: i32) -> Vec<u8> {
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "DELETE FROM avatar.avatar_cache WHERE avatar_id = $1",
        &[&id],
    )
    .unwrap();
    let image: Vec<u8> = tx
        .query_one("SELECT avatar.avatar_get($1, $2)", &[&id, &size])
        .unwrap()
        .get(0);
    tx.rollback().unwrap();
    image
}

/// Whatever rows a race left behind, every size is served as a rendition of
/// the current master: a row of an older image may stay until the next
/// avatar_set, but is never served.
fn assert_serves_the_current_image(c: &mut Client, id: uuid::Uuid) {
    let mut sizes: Vec<i32> = cache_rows(c, id).into_iter().map(|r| r.0).collect();
    sizes.extend([64, 512]);
    sizes.sort();
    sizes.dedup();
    for size in sizes {
        let served = get(c, id, size).unwrap().unwrap();
        assert_eq!(
            served,
            rendered_afresh(c, id, size),
            "{size} px is not of the current image"
        );
    }
}

/// A reads the old image and renders it while B's new image is written but
/// not committed. A does not wait for B, and at A's commit its rendition of
/// the old image is not kept: the master it was made from is being replaced.
#[test]
fn a_rendition_of_the_old_image_stored_while_the_new_one_commits_is_not_kept() {
    let db = TestDb::new("race_set_first");
    let mut admin = db.connect();
    let id = set(&mut admin, "users,1", &png(700, 500)).unwrap();
    get(&mut admin, id, 512).unwrap();
    let old = master_sha1(&mut admin, id);

    let mut b = db.connect();
    let mut b_tx = b.transaction().unwrap();
    b_tx.query_one("SELECT avatar.avatar_set('users,1', $1)", &[&png(500, 700)])
        .unwrap();

    let mut a = db.connect();
    a.batch_execute("SET lock_timeout = '3s'").unwrap();
    assert!(
        !get(&mut a, id, 64).unwrap().unwrap().is_empty(),
        "A waited for B"
    );
    b_tx.commit().unwrap();

    assert_ne!(master_sha1(&mut admin, id), old);
    assert!(
        cache_rows(&mut admin, id)
            .iter()
            .all(|(_, sha1)| *sha1 != old),
        "a rendition of the old image was kept: {:?}",
        cache_rows(&mut admin, id)
    );
    assert_serves_the_current_image(&mut admin, id);
}

/// Whatever a transaction memoized is checked at its commit, without
/// waiting for anyone: if its avatar was deleted, or is being deleted or
/// replaced, or was replaced since, the rows go. Nothing of a deleted
/// avatar outlives its deletion, and no rendition of an old image outlives
/// the new one.
#[test]
fn what_a_reader_memoized_is_checked_when_it_commits() {
    let db = TestDb::new("race_commit_check");
    let mut admin = db.connect();
    // (what the other session does, and whether it commits before the reader)
    let cases = [
        ("SELECT avatar.avatar_delete('users,1')", true),
        ("SELECT avatar.avatar_delete('users,1')", false),
        ("SELECT avatar.avatar_wipe('users,1')", false),
        // A new image, the master of another resource.
        (
            "SELECT avatar.avatar_set('users,1', image) FROM avatar.avatar WHERE resource = 'other,1'",
            true,
        ),
    ];
    set(&mut admin, "other,1", &png(500, 900)).unwrap();
    for (n, (writer, first)) in cases.into_iter().enumerate() {
        let resource = format!("users,{n}");
        let writer = writer.replace("users,1", &resource);
        let id = set(&mut admin, &resource, &png(900, 700)).unwrap();
        let mut reader = db.connect();
        let mut w = db.connect();
        reader.batch_execute("BEGIN").unwrap();
        w.batch_execute("BEGIN").unwrap();
        if first {
            // The writer's change is in flight while the reader memoizes.
            w.batch_execute(&writer).unwrap();
            assert!(get(&mut reader, id, 64).unwrap().is_some());
            w.batch_execute("COMMIT").unwrap();
        } else {
            // The reader memoizes, the writer changes and commits first.
            assert!(get(&mut reader, id, 64).unwrap().is_some());
            w.batch_execute(&writer).unwrap();
            w.batch_execute("COMMIT").unwrap();
        }
        reader.batch_execute("COMMIT").unwrap();
        let rows: i64 = admin
            .query_one(
                "SELECT count(*) FROM avatar.avatar_cache c
                  WHERE c.avatar_id = $1
                    AND NOT EXISTS (SELECT FROM avatar.avatar a WHERE a.id = c.avatar_id AND a.sha1 = c.sha1)",
                &[&id],
            )
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "{writer} (first: {first}) left renditions behind");
    }
    // A new image committed while the reader's transaction is open.
    let id = set(&mut admin, "users,9", &png(900, 700)).unwrap();
    let old = master_sha1(&mut admin, id);
    let mut reader = db.connect();
    reader.batch_execute("BEGIN").unwrap();
    assert!(get(&mut reader, id, 64).unwrap().is_some());
    set(&mut admin, "users,9", &png(700, 900)).unwrap();
    reader.batch_execute("COMMIT").unwrap();
    assert!(
        cache_rows(&mut admin, id)
            .iter()
            .all(|(_, sha1)| *sha1 != old),
        "the old image's renditions outlived the new image"
    );
}

/// A reader never waits for another reader: one that memoized a rendition
/// and keeps its transaction open does not hold up anyone else asking for
/// the same rendition (as it did through the cache key's unique index),
/// nor for the mezzanine it was made from.
#[test]
fn a_reader_never_waits_for_another_reader() {
    let db = TestDb::new("race_readers");
    let mut admin = db.connect();
    let id = set(&mut admin, "users,1", &png(900, 700)).unwrap();
    let mut holder = db.connect();
    holder.batch_execute("BEGIN").unwrap();
    holder
        .query(
            "SELECT * FROM avatar.avatar_rendition($1, 40, 'jpeg')",
            &[&id],
        )
        .unwrap();
    let mut other = db.connect();
    other.batch_execute("SET lock_timeout = '2s'").unwrap();
    for (size, format) in [(40, "jpeg"), (64, "png"), (32, "webp")] {
        other
            .query(
                "SELECT * FROM avatar.avatar_rendition($1, $2, $3)",
                &[&id, &size, &format],
            )
            .unwrap_or_else(|e| panic!("{size} px {format} waited for the open transaction: {e}"));
    }
    holder.batch_execute("COMMIT").unwrap();
    assert_serves_the_current_image(&mut admin, id);
}

/// A reader that memoizes and then prepares its transaction (two-phase
/// commit) holds nothing a writer waits for, however long it stays
/// prepared, and keeps nothing it memoized: no check could run when it is
/// finally committed, by whichever session.
#[test]
fn a_prepared_reader_holds_up_no_writer_and_keeps_nothing() {
    let db = TestDb::new("race_2pc");
    let mut admin = db.connect();
    let id = set(&mut admin, "users,1", &png(900, 700)).unwrap();
    let old = master_sha1(&mut admin, id);
    let mut reader = db.connect();
    reader.batch_execute("BEGIN").unwrap();
    reader
        .query(
            "SELECT * FROM avatar.avatar_rendition($1, 40, 'jpeg')",
            &[&id],
        )
        .unwrap();
    reader
        .batch_execute(&format!("PREPARE TRANSACTION '{}'", db.name))
        .unwrap();
    drop(reader);

    let mut writer = db.connect();
    writer.batch_execute("SET lock_timeout = '2s'").unwrap();
    set(&mut writer, "users,1", &png(700, 900)).expect("the writer did not wait");
    writer
        .batch_execute(
            "SELECT avatar.avatar_disable('users,1'); SELECT avatar.avatar_enable('users,1')",
        )
        .expect("nor here");
    admin
        .batch_execute(&format!("COMMIT PREPARED '{}'", db.name))
        .unwrap();
    assert!(
        cache_rows(&mut admin, id)
            .iter()
            .all(|(_, sha1)| *sha1 != old),
        "the prepared reader's rendition of the old image was kept"
    );
    assert_serves_the_current_image(&mut admin, id);
}

/// A copy the Libravatar fallback stores while the address is being wiped
/// is not kept once the wipe commits: nothing could remove it later, since
/// every cleanup goes through the address that is gone.
#[test]
fn a_fallback_copy_stored_during_a_wipe_is_not_kept() {
    let db = TestDb::new("race_fallback");
    let mut admin = db.connect();
    admin
        .batch_execute("SELECT avatar.avatar_set_email('users,1', 'ada@example.org')")
        .unwrap();
    let sha256: String = admin
        .query_one("SELECT encode(sha256('ada@example.org'), 'hex')", &[])
        .unwrap()
        .get(0);
    let mut wiper = db.connect();
    let mut tx = wiper.transaction().unwrap();
    tx.execute("SELECT avatar.avatar_wipe('users,1')", &[])
        .unwrap();
    let mut fallback = db.connect();
    fallback
        .query_one(
            "SELECT avatar.avatar_set_fallback($1, $2)",
            &[&sha256, &png(80, 80)],
        )
        .unwrap();
    tx.commit().unwrap();
    let left: i64 = admin
        .query_one("SELECT count(*) FROM avatar.avatar", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the copy outlived the wipe of its address");
}

/// A is inside its insert (held there by a trigger waiting on an advisory
/// lock) when B sets a new image: B does not wait for A, and A's row, of
/// the old image, is never served, nor kept.
#[test]
fn a_new_image_never_waits_for_a_reader_storing_the_old_one() {
    let db = TestDb::new("race_get_first");
    let mut admin = db.connect();
    let id = set(&mut admin, "users,1", &png(700, 500)).unwrap();
    get(&mut admin, id, 512).unwrap();
    admin
        .batch_execute(
            "CREATE FUNCTION public.hold() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242);
                          RETURN NEW; END $$;
             CREATE TRIGGER hold BEFORE INSERT ON avatar.avatar_cache
                 FOR EACH ROW EXECUTE FUNCTION public.hold();
             SELECT pg_advisory_lock(4242);",
        )
        .unwrap();

    let mut a = db.connect();
    let a_pid = pid(&mut a);
    let a_get = thread::spawn(move || get(&mut a, id, 64).unwrap().unwrap());
    wait_until_blocked(&mut admin, a_pid);

    let mut b = db.connect();
    b.batch_execute("SET lock_timeout = '3s'").unwrap();
    assert_eq!(
        set(&mut b, "users,1", &png(500, 700)).unwrap(),
        id,
        "B waited for A"
    );
    admin
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();

    assert!(!a_get.join().unwrap().is_empty());
    admin
        .batch_execute("DROP TRIGGER hold ON avatar.avatar_cache")
        .unwrap();
    assert_serves_the_current_image(&mut admin, id);
}

/// Concurrent sets of one resource: every one succeeds and returns the same
/// id, there is one row, and it holds exactly the image of the transaction
/// that wrote it last (its xmin), never a mix of two uploads.
#[test]
fn concurrent_sets_of_one_resource_keep_one_row_and_the_last_image() {
    let db = TestDb::new("race_sets");
    let mut admin = db.connect();
    let images: Vec<Vec<u8>> = (0..8).map(|i| png(200 + i * 10, 150)).collect();
    // The pipeline is deterministic: what each upload's master will be.
    let expected: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let id = set(&mut admin, &format!("expected,{i}"), image).unwrap();
            master_sha1(&mut admin, id)
        })
        .collect();

    let mut first = db.connect();
    let mut tx = first.transaction().unwrap();
    let id: Uuid = tx
        .query_one("SELECT avatar.avatar_set('users,1', $1)", &[&png(300, 200)])
        .unwrap()
        .get(0);
    let mut waiters = Vec::new();
    for (image, sha1) in images.into_iter().zip(expected) {
        let mut c = db.connect();
        let c_pid = pid(&mut c);
        waiters.push(thread::spawn(move || {
            let mut tx = c.transaction().unwrap();
            let id: Uuid = tx
                .query_one("SELECT avatar.avatar_set('users,1', $1)", &[&image])
                .unwrap()
                .get(0);
            let xid: String = tx
                .query_one("SELECT pg_current_xact_id()::text", &[])
                .unwrap()
                .get(0);
            tx.commit().unwrap();
            (id, xid, sha1)
        }));
        wait_until_blocked(&mut admin, c_pid);
    }
    tx.commit().unwrap();
    let writers: Vec<(Uuid, String, String)> =
        waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        writers.iter().all(|w| w.0 == id),
        "every set returns the one id"
    );

    let rows = admin
        .query(
            "SELECT xmin::text, sha1 FROM avatar.avatar WHERE resource = 'users,1'",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (xmin, sha1): (String, String) = (rows[0].get(0), rows[0].get(1));
    let last = writers
        .iter()
        .find(|w| w.1 == xmin)
        .expect("the row was written by one of the concurrent sets");
    assert_eq!(sha1, last.2, "the last writer's own image");
}

/// With one writer waiting on another, the order is known: the waiter's
/// image is the one kept.
#[test]
fn the_set_that_commits_last_wins() {
    let db = TestDb::new("race_pair");
    let mut admin = db.connect();
    let (one, two) = (png(300, 200), png(200, 300));
    let mut a = db.connect();
    let mut a_tx = a.transaction().unwrap();
    let id: Uuid = a_tx
        .query_one("SELECT avatar.avatar_set('users,1', $1)", &[&one])
        .unwrap()
        .get(0);
    let mut b = db.connect();
    let b_pid = pid(&mut b);
    let b_set = thread::spawn(move || set(&mut b, "users,1", &two).unwrap());
    wait_until_blocked(&mut admin, b_pid);
    a_tx.commit().unwrap();
    assert_eq!(b_set.join().unwrap(), id);
    let expected = set(&mut admin, "users,2", &png(200, 300)).unwrap();
    assert_eq!(
        master_sha1(&mut admin, id),
        master_sha1(&mut admin, expected)
    );
}

/// A read that misses memoizes inside the reader's transaction; it must
/// not hold a lock on the avatar until that transaction ends. Two
/// transactions that each read (and miss) one avatar and then change the
/// other's neither wait nor deadlock, whatever the change.
#[test]
fn a_read_holds_no_lock_a_writer_waits_for() {
    for change in [
        "SELECT avatar.avatar_set($1, $2)",
        "SELECT avatar.avatar_disable($1) WHERE $2::bytea IS NOT NULL",
        "SELECT avatar.avatar_delete($1) WHERE $2::bytea IS NOT NULL",
        "SELECT avatar.avatar_wipe($1) WHERE $2::bytea IS NOT NULL",
    ] {
        let db = TestDb::new("race_locks");
        let mut admin = db.connect();
        let x = set(&mut admin, "users,1", &png(700, 500)).unwrap();
        let y = set(&mut admin, "users,2", &png(500, 700)).unwrap();
        let (mut one, mut two) = (db.connect(), db.connect());
        // Waiting at all is the failure; this only keeps a failing run short.
        for c in [&mut one, &mut two] {
            c.batch_execute("BEGIN; SET LOCAL lock_timeout = '3s'")
                .unwrap();
        }
        assert!(get(&mut one, x, 64).unwrap().is_some());
        assert!(get(&mut two, y, 64).unwrap().is_some());
        let image = png(300, 300);
        one.execute(change, &[&"users,2", &image])
            .unwrap_or_else(|e| panic!("{change} of another's avatar waited: {e}"));
        two.execute(change, &[&"users,1", &image])
            .unwrap_or_else(|e| panic!("{change} of another's avatar waited: {e}"));
        one.batch_execute("COMMIT").unwrap();
        two.batch_execute("COMMIT").unwrap();
        for id in [x, y] {
            if get(&mut admin, id, 64).unwrap().is_some() {
                assert_serves_the_current_image(&mut admin, id);
            }
        }
    }
}
