//! avatar.attach: deleting an owner row deletes its avatar.

use pg_avatar_tests::*;

fn avatar_of(c: &mut Client, resource: &str) -> Option<Uuid> {
    c.query_one("SELECT avatar.avatar_id($1)", &[&resource])
        .unwrap()
        .get(0)
}

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
