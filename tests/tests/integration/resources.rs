//! One resource per row, however it is computed: by the derive in Rust
//! (`avatar_resource`), by diesel in SQL (`avatar_resource_sql`, which
//! calls `avatar.avatar_resource`), and by the extension's delete trigger,
//! for every key type the derive and `attach` support and for the values
//! whose text is most likely to differ between Rust and PostgreSQL.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_avatar::{Avatar, Uuid};
use pg_avatar_tests::{avatar_of, count, png, TestDb};

mod schema {
    diesel::table! {
        ints (id) { id -> Int4, }
    }
    diesel::table! {
        bigs (id) { id -> Int8, }
    }
    diesel::table! {
        texts (id) { id -> Text, }
    }
    diesel::table! {
        varchars (id) { id -> Text, }
    }
    diesel::table! {
        uuids (id) { id -> Uuid, }
    }
    diesel::table! {
        pairs (org, login) { org -> Int8, login -> Text, }
    }
}
use schema::*;

#[derive(Queryable, Identifiable, Avatar)]
#[diesel(table_name = ints)]
struct Int {
    id: i32,
}

#[derive(Queryable, Identifiable, Avatar)]
#[diesel(table_name = bigs)]
struct Big {
    id: i64,
}

#[derive(Queryable, Identifiable, Avatar)]
#[diesel(table_name = texts)]
struct Text {
    id: String,
}

#[derive(Queryable, Identifiable, Avatar)]
#[diesel(table_name = varchars)]
struct Varchar {
    id: String,
}

#[derive(Queryable, Identifiable, Avatar)]
#[diesel(table_name = uuids)]
struct Uuidish {
    id: Uuid,
}

#[derive(Queryable, Identifiable, Avatar)]
#[diesel(table_name = pairs, primary_key(org, login))]
struct Pair {
    org: i64,
    login: String,
}

/// The three computations of one row's resource agree, and the trigger's
/// is the one that deleting the row wipes.
fn agree<M>(
    db: &TestDb,
    conn: &mut PgConnection,
    table: &str,
    model: &M,
    from_sql: impl FnOnce(&mut PgConnection) -> String,
) where
    M: Avatar,
{
    let rust = model.avatar_resource();
    let sql = from_sql(conn);
    assert_eq!(rust, sql, "Rust and SQL name a row of {table} alike");
    let mut c = db.connect();
    pg_avatar_tests::set(&mut c, &rust, &png(40, 40)).unwrap();
    c.batch_execute(&format!("DELETE FROM {table}")).unwrap();
    assert_eq!(
        avatar_of(&mut c, &rust),
        None,
        "deleting the row wiped {rust:?}: the trigger named it alike"
    );
}

fn setup() -> (TestDb, PgConnection) {
    let db = TestDb::new("resources");
    let mut conn = PgConnection::establish(&db.conninfo()).unwrap();
    conn.batch_execute(
        "CREATE TABLE ints (id int4 PRIMARY KEY);
         CREATE TABLE bigs (id int8 PRIMARY KEY);
         CREATE TABLE texts (id text PRIMARY KEY);
         CREATE TABLE varchars (id varchar(200) PRIMARY KEY);
         CREATE TABLE uuids (id uuid PRIMARY KEY);
         CREATE TABLE pairs (org int8, login text, PRIMARY KEY (org, login));
         SELECT avatar.attach('ints', 'id'), avatar.attach('bigs', 'id'),
                avatar.attach('texts', 'id'), avatar.attach('varchars', 'id'),
                avatar.attach('uuids', 'id'), avatar.attach('pairs', 'org', 'login');",
    )
    .unwrap();
    (db, conn)
}

#[test]
fn rust_sql_and_the_trigger_name_every_key_alike() {
    let (db, mut conn) = setup();
    for id in [0, -1, 42, i32::MIN, i32::MAX] {
        diesel::insert_into(ints::table)
            .values(ints::id.eq(id))
            .execute(&mut conn)
            .unwrap();
        agree(&db, &mut conn, "ints", &Int { id }, |c| {
            ints::table
                .select(Int::avatar_resource_sql())
                .first(c)
                .unwrap()
        });
    }
    for id in [i64::MIN, -1, 0, i64::MAX] {
        diesel::insert_into(bigs::table)
            .values(bigs::id.eq(id))
            .execute(&mut conn)
            .unwrap();
        agree(&db, &mut conn, "bigs", &Big { id }, |c| {
            bigs::table
                .select(Big::avatar_resource_sql())
                .first(c)
                .unwrap()
        });
    }
    let texts = [
        "plain",
        "a,b",
        "50%",
        "%2C",
        "comma, then %25",
        " spaces ",
        "ünïcødé ✓",
        "line\nbreak",
        "",
    ];
    for id in texts {
        diesel::insert_into(texts::table)
            .values(texts::id.eq(id))
            .execute(&mut conn)
            .unwrap();
        agree(&db, &mut conn, "texts", &Text { id: id.into() }, |c| {
            texts::table
                .select(Text::avatar_resource_sql())
                .first(c)
                .unwrap()
        });
        diesel::insert_into(varchars::table)
            .values(varchars::id.eq(id))
            .execute(&mut conn)
            .unwrap();
        agree(
            &db,
            &mut conn,
            "varchars",
            &Varchar { id: id.into() },
            |c| {
                varchars::table
                    .select(Varchar::avatar_resource_sql())
                    .first(c)
                    .unwrap()
            },
        );
    }
    for id in [
        Uuid::nil(),
        Uuid::max(),
        Uuid::from_u128(0xABCDEF0123456789),
    ] {
        diesel::insert_into(uuids::table)
            .values(uuids::id.eq(id))
            .execute(&mut conn)
            .unwrap();
        agree(&db, &mut conn, "uuids", &Uuidish { id }, |c| {
            uuids::table
                .select(Uuidish::avatar_resource_sql())
                .first(c)
                .unwrap()
        });
    }
    for (org, login) in [(1, "a,b"), (1, "a"), (-5, "%"), (7, "")] {
        diesel::insert_into(pairs::table)
            .values((pairs::org.eq(org), pairs::login.eq(login)))
            .execute(&mut conn)
            .unwrap();
        let pair = Pair {
            org,
            login: login.into(),
        };
        agree(&db, &mut conn, "pairs", &pair, |c| {
            pairs::table
                .select(Pair::avatar_resource_sql())
                .first(c)
                .unwrap()
        });
    }
}

/// The SQL function is the contract's encoding, and refuses a NULL part
/// rather than naming some other resource.
#[test]
fn the_sql_function_is_the_contracts_encoding() {
    let db = TestDb::new("resource_fn");
    let mut c = db.connect();
    for parts in [vec!["42"], vec!["a,b", "50%"], vec!["a", "b,50%"], vec![""]] {
        let sql: String = c
            .query_one("SELECT avatar.avatar_resource('t', $1)", &[&parts])
            .unwrap()
            .get(0);
        assert_eq!(sql, avatar_contract::resource::encode("t", &parts));
    }
    let err = c
        .query_one("SELECT avatar.avatar_resource('t', ARRAY['a', NULL])", &[])
        .unwrap_err();
    assert_eq!(
        err.code().unwrap().code(),
        avatar_contract::Class::NullValue.sqlstate()
    );
}

/// How much running `sql` grows a fresh backend at its peak.
fn peak(db: &TestDb, sql: &str) -> u64 {
    let (mut c, pid) = pg_avatar_tests::backend(db);
    let before = pg_avatar_tests::status_bytes(pid, "VmRSS:");
    c.batch_execute(sql).unwrap();
    pg_avatar_tests::status_bytes(pid, "VmHWM:").saturating_sub(before)
}

/// A key longer than any resource names none, and costs the backend no
/// more than PostgreSQL's own copy of it: neither the trigger nor the SQL
/// function copies it into Rust's memory or builds a resource of its
/// length (three times it, escaped: an allocation Rust cannot fail, which
/// would abort the backend).
#[test]
fn a_key_of_any_length_costs_at_most_itself() {
    let db = TestDb::new("resource_long");
    let key = 64u64 << 20;
    db.connect()
        .batch_execute(&format!(
            "CREATE TABLE notes (k text);
             SELECT avatar.attach('notes', 'k');
             INSERT INTO notes VALUES (repeat(',', 1000)), (repeat(',', {key}));"
        ))
        .unwrap();
    let mut c = db.connect();
    // Lengths only: a failure must not print 192 MB.
    let named: Vec<Option<i32>> = c
        .query(
            "SELECT octet_length(avatar.avatar_resource('notes', ARRAY[k]))
               FROM notes ORDER BY length(k)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        named,
        [Some(0), Some(0)],
        "1000 escaped commas are over 1024 bytes: a blank resource, which names nothing"
    );

    // The same query without the function, for what PostgreSQL itself
    // holds (the detoasted key, and the array made of it).
    let long = "FROM notes WHERE length(k) > 1000";
    let baseline = peak(&db, &format!("SELECT cardinality(ARRAY[k]) {long}"));
    let function = peak(
        &db,
        &format!("SELECT avatar.avatar_resource('notes', ARRAY[k]) {long}"),
    );
    assert!(
        function < baseline + key / 2,
        "the function grew a backend by {function} bytes, the query alone by {baseline}"
    );
    let baseline = peak(&db, &format!("SELECT length(k) {long}"));
    let trigger = peak(&db, "DELETE FROM notes");
    assert!(
        trigger < baseline + key / 2,
        "deleting a {key}-byte key grew a backend by {trigger} bytes, reading it by {baseline}"
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM notes"), 0);

    // Nor do more parts than a resource has bytes, or a prefix that long,
    // and a long prefix costs no more than itself.
    for sql in [
        "SELECT avatar.avatar_resource('t', array_fill(''::text, ARRAY[1000000]))",
        "SELECT avatar.avatar_resource(repeat('t', 1025), '{}')",
        "SELECT avatar.avatar_resource(repeat('t', 1025), '{1}')",
    ] {
        let named: String = c.query_one(sql, &[]).unwrap().get(0);
        assert_eq!(named.len(), 0, "{sql}");
    }
    let baseline = peak(&db, &format!("SELECT length(repeat('t', {key}))"));
    let prefix = peak(
        &db,
        &format!("SELECT length(avatar.avatar_resource(repeat('t', {key}), '{{}}'))"),
    );
    assert!(
        prefix < baseline + key / 2,
        "a {key}-byte prefix grew a backend by {prefix} bytes, making it by {baseline}"
    );
    let fits: Option<String> = c
        .query_one(
            "SELECT avatar.avatar_resource('t', array_fill('x'::text, ARRAY[3]))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(fits.as_deref(), Some("t,x,x,x"));
}
