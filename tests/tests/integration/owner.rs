//! avatar.attach: deleting an owner row deletes its avatar.

use pg_avatar_tests::*;

#[test]
fn deleting_an_owner_row_deletes_its_avatar_and_cache() {
    let db = TestDb::new("owner");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id integer PRIMARY KEY, name text);
         INSERT INTO users VALUES (1, 'ada'), (2, 'grace');
         SELECT avatar.attach('users', 'id');",
    )
    .unwrap();
    let one = set(&mut c, "users,1", &png(120, 90)).unwrap();
    set(&mut c, "users,2", &png(90, 120)).unwrap();
    get(&mut c, one, 64).unwrap();

    c.batch_execute("DELETE FROM users WHERE id = 1").unwrap();
    assert_eq!(avatar_of(&mut c, "users,1"), None);
    assert!(cache_rows(&mut c, one).is_empty());
    assert_eq!(get(&mut c, one, 64).unwrap(), None);
    assert!(
        avatar_of(&mut c, "users,2").is_some(),
        "other rows keep theirs"
    );

    // A copy of a row is another resource: it has no avatar, and sharing
    // one would let deleting either row take the other's picture.
    c.batch_execute("INSERT INTO users SELECT 3, name FROM users WHERE id = 2")
        .unwrap();
    assert_eq!(avatar_of(&mut c, "users,3"), None);
    c.batch_execute("DELETE FROM users WHERE id = 3").unwrap();
    assert!(avatar_of(&mut c, "users,2").is_some());
}

#[test]
fn composite_keys_are_named_as_diesel_avatar_names_them() {
    let db = TestDb::new("owner_composite");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE members (org text, login text, PRIMARY KEY (org, login));
         INSERT INTO members VALUES ('a,b', '50%'), ('a', 'b,50%');
         SELECT avatar.attach('members', 'org', 'login');",
    )
    .unwrap();
    set(&mut c, "members,a%2Cb,50%25", &png(50, 50)).unwrap();
    set(&mut c, "members,a,b%2C50%25", &png(50, 50)).unwrap();
    c.batch_execute("DELETE FROM members WHERE org = 'a,b'")
        .unwrap();
    assert_eq!(avatar_of(&mut c, "members,a%2Cb,50%25"), None);
    assert!(avatar_of(&mut c, "members,a,b%2C50%25").is_some());
}

#[test]
fn attach_checks_its_arguments_and_the_callers_rights() {
    let db = TestDb::new("owner_errors");
    let mut c = db.connect();
    c.batch_execute("CREATE TABLE users (id integer PRIMARY KEY)")
        .unwrap();
    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.attach('users', 'uid')")),
        "42703"
    );
    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.attach('users', VARIADIC '{}'::name[])")),
        "22023"
    );
    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.attach('nosuchtable', 'id')")),
        "42P01"
    );
    let role = format!("{}_app", db.name);
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN;
         GRANT EXECUTE ON FUNCTION avatar.attach(regclass, name[]), avatar.avatar_owner_deleted() TO {role};"
    ))
    .unwrap();
    let mut app = connect(&db.conninfo_as(&role));
    assert_eq!(
        sqlstate(app.batch_execute("SELECT avatar.attach('users', 'id')")),
        "42501",
        "only the table's owner may attach it"
    );
    drop(app);
    c.batch_execute(&format!(
        "REVOKE ALL ON FUNCTION avatar.attach(regclass, name[]), avatar.avatar_owner_deleted() FROM {role};
         DROP ROLE {role};"
    ))
    .unwrap();
}

/// What is kept about a resource besides its image: address digests, and
/// the copies the Libravatar fallback fetched for those addresses.
fn traces(c: &mut Client, resource: &str) -> (i64, i64) {
    let emails: i64 = c
        .query_one(
            "SELECT count(*) FROM avatar.avatar_email WHERE resource = $1",
            &[&resource],
        )
        .unwrap()
        .get(0);
    let copies: i64 = c
        .query_one(
            "SELECT count(*) FROM avatar.avatar a JOIN avatar.avatar_email e
                 ON a.resource = 'libravatar:' || e.sha256 WHERE e.resource = $1",
            &[&resource],
        )
        .unwrap()
        .get(0);
    (emails, copies)
}

/// Deleting the owner is `avatar_wipe`: the address digests go too, and
/// the fallback's copies for them, so nobody asks third parties about a
/// deleted user.
#[test]
fn deleting_the_owner_deletes_everything_about_them() {
    let db = TestDb::new("owner_wipe");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1), (2);
         SELECT avatar.attach('users', 'id');
         SELECT avatar.avatar_set_email('users,1', 'ada@example.org');
         SELECT avatar.avatar_set_email('users,2', 'grace@example.org');",
    )
    .unwrap();
    set(&mut c, "users,1", &png(60, 60)).unwrap();
    // users,2 has no avatar of its own, only a copy from the fallback.
    c.query_one(
        "SELECT avatar.avatar_set_fallback(encode(sha256('grace@example.org'), 'hex'), $1)",
        &[&png(60, 60)],
    )
    .unwrap();
    assert_eq!(traces(&mut c, "users,2"), (1, 1));

    c.batch_execute("DELETE FROM users").unwrap();
    assert_eq!(avatar_of(&mut c, "users,1"), None);
    assert_eq!(traces(&mut c, "users,1"), (0, 0));
    assert_eq!(traces(&mut c, "users,2"), (0, 0), "digests and copies gone");
    assert_eq!(count(&mut c, "SELECT count(*) FROM avatar.avatar"), 0);
}

/// Rows of a partitioned table name their avatars after the attached
/// table, not after the partition that holds them. Deleting through the
/// root or a partition deletes the avatar; moving a row between partitions
/// (an UPDATE PostgreSQL runs as a delete and an insert) keeps it.
#[test]
fn partitioned_tables_are_named_after_their_root() {
    let db = TestDb::new("owner_partitions");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id integer, region text) PARTITION BY LIST (region);
         CREATE TABLE users_eu PARTITION OF users FOR VALUES IN ('eu');
         CREATE TABLE users_us PARTITION OF users FOR VALUES IN ('us');
         INSERT INTO users VALUES (1, 'eu'), (2, 'eu'), (3, 'us');
         SELECT avatar.attach('users', 'id');",
    )
    .unwrap();
    for n in 1..=3 {
        set(&mut c, &format!("users,{n}"), &png(40, 40)).unwrap();
    }
    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.attach('users_eu', 'id')")),
        "22023",
        "a partition is attached through its root"
    );
    c.batch_execute("UPDATE users SET region = 'us' WHERE id = 1")
        .unwrap();
    assert!(
        avatar_of(&mut c, "users,1").is_some(),
        "a moved row keeps its avatar"
    );
    c.batch_execute("DELETE FROM users WHERE id = 2").unwrap();
    assert_eq!(
        avatar_of(&mut c, "users,2"),
        None,
        "deleted through the root"
    );
    c.batch_execute("DELETE FROM users_us WHERE id = 3")
        .unwrap();
    assert_eq!(
        avatar_of(&mut c, "users,3"),
        None,
        "deleted from its partition"
    );
    // A partition made after attach is covered too.
    c.batch_execute(
        "CREATE TABLE users_as PARTITION OF users FOR VALUES IN ('as');
         INSERT INTO users VALUES (4, 'as');",
    )
    .unwrap();
    set(&mut c, "users,4", &png(40, 40)).unwrap();
    c.batch_execute("DELETE FROM users_as").unwrap();
    assert_eq!(avatar_of(&mut c, "users,4"), None);
}

/// TRUNCATE of an attached table wipes every avatar named after it. A
/// partition cannot be truncated on its own while the rest of the table
/// has rows, because nothing tells which avatars were its rows'.
#[test]
fn truncate_wipes_the_tables_avatars_or_is_refused() {
    let db = TestDb::new("owner_truncate");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id integer PRIMARY KEY);
         CREATE TABLE staff (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1), (2);
         SELECT avatar.attach('users', 'id');
         SELECT avatar.attach('staff', 'id');
         SELECT avatar.avatar_set_email('users,2', 'ada@example.org');",
    )
    .unwrap();
    set(&mut c, "users,1", &png(40, 40)).unwrap();
    set(&mut c, "staff,1", &png(40, 40)).unwrap();
    set(&mut c, "users_extra,1", &png(40, 40)).unwrap();
    c.batch_execute("TRUNCATE users").unwrap();
    assert_eq!(avatar_of(&mut c, "users,1"), None);
    assert_eq!(traces(&mut c, "users,2"), (0, 0));
    assert!(avatar_of(&mut c, "staff,1").is_some(), "another table's");
    assert!(
        avatar_of(&mut c, "users_extra,1").is_some(),
        "a prefix is a whole name"
    );

    c.batch_execute(
        "CREATE TABLE members (id integer, region text) PARTITION BY LIST (region);
         CREATE TABLE members_eu PARTITION OF members FOR VALUES IN ('eu');
         CREATE TABLE members_us PARTITION OF members FOR VALUES IN ('us');
         INSERT INTO members VALUES (1, 'eu'), (2, 'us');
         SELECT avatar.attach('members', 'id');",
    )
    .unwrap();
    set(&mut c, "members,1", &png(40, 40)).unwrap();
    set(&mut c, "members,2", &png(40, 40)).unwrap();
    assert_eq!(
        sqlstate(c.batch_execute("TRUNCATE members_eu")),
        "0A000",
        "a partition alone cannot be truncated"
    );
    assert!(avatar_of(&mut c, "members,1").is_some(), "nothing changed");
    c.batch_execute("TRUNCATE members").unwrap();
    assert_eq!(avatar_of(&mut c, "members,1"), None);
    assert_eq!(avatar_of(&mut c, "members,2"), None);
}

/// `detach` undoes `attach`: the triggers and the record go, the avatars
/// stay. Dropping an attached table detaches it, so its name can be
/// attached again.
#[test]
fn detach_and_drop_forget_the_attachment() {
    let db = TestDb::new("owner_detach");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1), (2);
         SELECT avatar.attach('users', 'id');",
    )
    .unwrap();
    set(&mut c, "users,1", &png(40, 40)).unwrap();
    let detached: bool = c
        .query_one("SELECT avatar.detach('users')", &[])
        .unwrap()
        .get(0);
    assert!(detached);
    let again: bool = c
        .query_one("SELECT avatar.detach('users')", &[])
        .unwrap()
        .get(0);
    assert!(!again, "not attached any more");
    c.batch_execute("DELETE FROM users WHERE id = 1").unwrap();
    assert!(avatar_of(&mut c, "users,1").is_some(), "detached: kept");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass"
        ),
        0
    );

    c.batch_execute(
        "SELECT avatar.attach('users', 'id');
         DROP TABLE users;
         CREATE TABLE users (id bigint PRIMARY KEY);
         SELECT avatar.attach('users', 'id');",
    )
    .unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM avatar.avatar_attachment"),
        1
    );
}
