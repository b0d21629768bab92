//! `ALTER EXTENSION pg_avatar UPDATE` from every released version keeps the
//! data, and ends with exactly the objects a fresh install has. The new
//! library serves the old schema until the update (as it must between
//! installing binaries and running the update), and switches in-session.
//! Released versions' scripts are kept in `sql/released/`.

use pg_avatar_tests::*;
use postgres::{Client, SimpleQueryMessage};

/// What makes two installs the same, one query per kind of object.
const CATALOG: &[(&str, &str)] = &[
    (
        "extension members",
        "SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
           FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
          WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
            AND e.extname = 'pg_avatar'",
    ),
    (
        "functions",
        "SELECT p.oid::regprocedure, pg_get_functiondef(p.oid), p.proacl,
                obj_description(p.oid, 'pg_proc')
           FROM pg_proc p WHERE p.pronamespace = 'avatar'::regnamespace",
    ),
    (
        "relations",
        "SELECT c.oid::regclass, c.relkind, c.reloptions, c.relacl
           FROM pg_class c WHERE c.relnamespace = 'avatar'::regnamespace",
    ),
    (
        "columns",
        "SELECT a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
                a.attcollation::regcollation, a.attnotnull, a.attstorage, a.attgenerated,
                pg_get_expr(d.adbin, d.adrelid)
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = 'avatar'::regnamespace
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attnum > 0 AND NOT a.attisdropped",
    ),
    (
        "constraints",
        "SELECT conrelid::regclass, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE connamespace = 'avatar'::regnamespace",
    ),
    (
        "indexes",
        "SELECT pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          WHERE c.relnamespace = 'avatar'::regnamespace",
    ),
    (
        "triggers",
        "SELECT pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'avatar'::regnamespace AND NOT t.tgisinternal",
    ),
    (
        "dumped tables and schema grants",
        "SELECT e.extconfig::regclass[], e.extcondition, n.nspacl, e.extversion
           FROM pg_extension e JOIN pg_namespace n ON n.nspname = 'avatar'
          WHERE e.extname = 'pg_avatar'",
    ),
];

fn describe(c: &mut Client) -> Vec<(String, Vec<String>)> {
    CATALOG
        .iter()
        .map(|(kind, sql)| {
            let mut rows: Vec<String> = c
                .simple_query(sql)
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>()
                            .join(" | "),
                    ),
                    _ => None,
                })
                .collect();
            rows.sort();
            (kind.to_string(), rows)
        })
        .collect()
}

fn released_versions() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql/released");
    let mut versions: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            Some(
                name.strip_prefix("pg_avatar--")?
                    .strip_suffix(".sql")?
                    .to_string(),
            )
        })
        .collect();
    versions.sort();
    assert!(!versions.is_empty());
    versions
}

#[test]
fn every_released_version_upgrades_to_a_fresh_install() {
    let fresh = TestDb::new("upgrade_fresh");
    let expected = describe(&mut fresh.connect());
    for version in released_versions() {
        let db = TestDb::without_extension("upgrade");
        let mut c = db.connect();
        c.batch_execute(&format!("CREATE EXTENSION pg_avatar VERSION '{version}'"))
            .unwrap();
        let id = set(&mut c, "users,1", &png(300, 200)).unwrap();
        let before = get(&mut c, id, 64).unwrap().unwrap();
        let sha1 = master_sha1(&mut c, id);

        c.batch_execute("ALTER EXTENSION pg_avatar UPDATE").unwrap();

        assert_eq!(
            get(&mut c, id, 64).unwrap().unwrap(),
            before,
            "from {version}"
        );
        assert_eq!(master_sha1(&mut c, id), sha1);
        // The same session's kept plans follow the new schema: a disabled
        // avatar is no longer served.
        c.batch_execute("SELECT avatar.avatar_disable('users,1')")
            .unwrap();
        assert_eq!(
            get(&mut c, id, 64).unwrap(),
            None,
            "plans re-made after the update"
        );
        c.batch_execute("SELECT avatar.avatar_enable('users,1')")
            .unwrap();
        let again = set(&mut c, "users,1", &png(200, 300)).unwrap();
        assert_eq!(again, id, "the id survives the upgrade and a new image");
        for ((kind, want), (_, got)) in expected.iter().zip(describe(&mut c)) {
            let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
            let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{kind} after upgrading from {version} differ from a fresh install\n\
                 only in a fresh install: {missing:#?}\nonly after the upgrade: {extra:#?}"
            );
        }
    }
}

/// 0.2.0's attach installed a trigger that took its key columns as
/// arguments and named resources after whichever table it fired on. The
/// update attaches each such table again as 0.3.0 records it; a table that
/// 0.3.0 would not attach (a key of the tenant's own type) stays detached,
/// and deleting from it fails instead of running the old trigger's logic.
#[test]
fn attachments_made_by_0_2_0_are_repaired() {
    let db = TestDb::without_extension("upgrade_attached");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE EXTENSION pg_avatar VERSION '0.2.0';
         CREATE TABLE users (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1), (2);
         SELECT avatar.attach('users', 'id');
         CREATE TABLE members (id integer, region text) PARTITION BY LIST (region);
         CREATE TABLE members_eu PARTITION OF members FOR VALUES IN ('eu');
         INSERT INTO members VALUES (1, 'eu');
         SELECT avatar.attach('members', 'id');
         CREATE TYPE mood AS ENUM ('happy');
         CREATE TABLE moods (m mood PRIMARY KEY);
         INSERT INTO moods VALUES ('happy');
         SELECT avatar.attach('moods', 'm');",
    )
    .unwrap();
    for resource in ["users,1", "users,2", "members,1", "moods,happy"] {
        set(&mut c, resource, &png(40, 40)).unwrap();
    }

    c.batch_execute("ALTER EXTENSION pg_avatar UPDATE").unwrap();

    let recorded: Vec<String> = c
        .query(
            "SELECT relid::text || ' ' || key_columns::text FROM avatar.avatar_attachment ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, ["members {id}", "users {id}"]);
    c.batch_execute("DELETE FROM users WHERE id = 1").unwrap();
    assert_eq!(avatar_of(&mut c, "users,1"), None);
    assert!(avatar_of(&mut c, "users,2").is_some());
    c.batch_execute("DELETE FROM members_eu").unwrap();
    assert_eq!(
        avatar_of(&mut c, "members,1"),
        None,
        "named after the attached table now, not the partition"
    );
    assert_eq!(
        sqlstate(c.batch_execute("DELETE FROM moods")),
        "55000",
        "the old trigger refuses to act for a table it cannot read safely"
    );
    assert!(avatar_of(&mut c, "moods,happy").is_some());
}

/// Two tables of one name attached by 0.2.0 (`users` and `other.users`)
/// both deleted the avatars `users,...`. The update cannot tell which of
/// them owns those (the older table may be a tenant's that got there
/// first), so it attaches neither: deleting from either fails with a hint
/// until the application attaches the right one. 0.2.0's README granted
/// its trigger function to table owners, who could then put it on any
/// table of theirs; the update takes that grant back, since 0.3.0's
/// triggers need none.
#[test]
fn a_prefix_two_tables_shared_goes_to_neither() {
    let db = TestDb::without_extension("upgrade_shared");
    let owner = Role::new(&db, "owner");
    let mut c = db.connect();
    c.batch_execute(&format!(
        "CREATE EXTENSION pg_avatar VERSION '0.2.0';
         GRANT EXECUTE ON FUNCTION avatar.attach(regclass, name[]),
             avatar.avatar_owner_deleted() TO {o};
         CREATE SCHEMA other AUTHORIZATION {o};
         CREATE TABLE users (id integer PRIMARY KEY);
         INSERT INTO users VALUES (1);
         SELECT avatar.attach('users', 'id');",
        o = owner.name
    ))
    .unwrap();
    owner
        .connect()
        .batch_execute(
            "CREATE TABLE other.users (id integer PRIMARY KEY);
             INSERT INTO other.users VALUES (1);
             SELECT avatar.attach('other.users', 'id');",
        )
        .unwrap();
    set(&mut c, "users,1", &png(40, 40)).unwrap();

    c.batch_execute("ALTER EXTENSION pg_avatar UPDATE").unwrap();

    let recorded = count(&mut c, "SELECT count(*) FROM avatar.avatar_attachment");
    assert_eq!(recorded, 0, "neither table was given the prefix");
    for table in ["users", "other.users"] {
        assert_eq!(
            sqlstate(c.batch_execute(&format!("DELETE FROM {table}"))),
            "55000",
            "{table}"
        );
    }
    assert!(avatar_of(&mut c, "users,1").is_some());
    let granted: bool = c
        .query_one(
            "SELECT has_function_privilege($1, 'avatar.avatar_owner_deleted()', 'EXECUTE')",
            &[&owner.name],
        )
        .unwrap()
        .get(0);
    assert!(
        !granted,
        "0.2.0's grant of the trigger function is taken back"
    );
}

/// 0.3.0's attach needs the right to wipe, since its triggers wipe every
/// resource under the table's name. A table 0.2.0 attached for an owner
/// without that right is not attached again by the update (which runs as
/// a superuser), or a tenant that attached its own `users` first would keep
/// the application's prefix.
#[test]
fn an_owner_without_the_right_to_wipe_is_not_attached_again() {
    let db = TestDb::without_extension("upgrade_squat");
    let tenant = Role::new(&db, "tenant");
    let mut c = db.connect();
    c.batch_execute(&format!(
        "CREATE EXTENSION pg_avatar VERSION '0.2.0';
         GRANT EXECUTE ON FUNCTION avatar.attach(regclass, name[]),
             avatar.avatar_owner_deleted() TO {t};
         CREATE SCHEMA {t} AUTHORIZATION {t};
         CREATE TABLE users (id integer PRIMARY KEY);",
        t = tenant.name
    ))
    .unwrap();
    tenant
        .connect()
        .batch_execute(&format!(
            "CREATE TABLE {t}.users (id integer PRIMARY KEY);
             INSERT INTO {t}.users VALUES (1);
             SELECT avatar.attach('{t}.users', 'id');",
            t = tenant.name
        ))
        .unwrap();
    set(&mut c, "users,1", &png(40, 40)).unwrap();

    c.batch_execute("ALTER EXTENSION pg_avatar UPDATE").unwrap();

    let recorded = count(&mut c, "SELECT count(*) FROM avatar.avatar_attachment");
    assert_eq!(recorded, 0, "the tenant's table was attached again");
    assert_eq!(
        sqlstate(
            tenant
                .connect()
                .batch_execute(&format!("DELETE FROM {}.users", tenant.name))
        ),
        "55000",
        "its old trigger refuses to act"
    );
    tenant
        .connect()
        .batch_execute(&format!("TRUNCATE {}.users", tenant.name))
        .unwrap();
    assert!(avatar_of(&mut c, "users,1").is_some());
    c.batch_execute("SELECT avatar.attach('users', 'id')")
        .expect("the application attaches its own table");
}

/// During the update script the installed version already names the new
/// schema, whose objects are half made: a call that plans against it then
/// (from a superuser's event trigger) is refused as such, rather than
/// failing on whichever new object is not there yet.
#[test]
fn nothing_is_planned_against_a_schema_being_updated() {
    let db = TestDb::without_extension("upgrade_midway");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE EXTENSION pg_avatar VERSION '0.2.0';
         CREATE FUNCTION midway() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
             PERFORM avatar.avatar_get('00000000-0000-0000-0000-000000000001', 64);
         END $$;
         CREATE EVENT TRIGGER midway ON ddl_command_end EXECUTE FUNCTION midway();",
    )
    .unwrap();
    let refused = c.batch_execute("ALTER EXTENSION pg_avatar UPDATE");
    assert_eq!(
        sqlstate(refused),
        avatar_contract::Class::WrongState.sqlstate()
    );
    c.batch_execute("DROP EVENT TRIGGER midway; ALTER EXTENSION pg_avatar UPDATE")
        .unwrap();
    let id = set(&mut c, "users,1", &png(40, 40)).unwrap();
    assert!(get(&mut c, id, 32).unwrap().is_some(), "updated, it serves");
}

/// `avatar_info` gained columns, so the update makes it anew. Its grants
/// are not made again inside the update, where they would count as the
/// extension's initial privileges and be left out of every dump (the
/// review's finding): the update names the roles in a warning, and the
/// grants the administrator makes after it survive a dump and restore.
#[test]
fn avatar_info_is_made_anew_and_the_update_says_whom_to_grant_it() {
    use postgres::{Config, NoTls};
    use std::sync::{Arc, Mutex};

    let db = TestDb::without_extension("upgrade_info");
    let mut c = db.connect();
    c.batch_execute("CREATE EXTENSION pg_avatar VERSION '0.2.0'")
        .unwrap();
    let id = set(&mut c, "users,1", &png(60, 60)).unwrap();
    let app = Role::new(&db, "info_app");
    let nobody = Role::new(&db, "info_nobody");
    c.batch_execute(&format!(
        "GRANT EXECUTE ON FUNCTION avatar.avatar_info(uuid) TO {}",
        app.name
    ))
    .unwrap();

    let heard = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut admin = {
        let heard = heard.clone();
        let mut config: Config = db.conninfo().parse().unwrap();
        config.notice_callback(move |notice| {
            heard.lock().unwrap().push(format!(
                "{} | {}",
                notice.message(),
                notice.hint().unwrap_or("")
            ))
        });
        config.connect(NoTls).unwrap()
    };
    admin
        .batch_execute("ALTER EXTENSION pg_avatar UPDATE")
        .unwrap();
    let warnings = heard.lock().unwrap().clone();
    let grant = format!(
        "GRANT EXECUTE ON FUNCTION avatar.avatar_info(uuid) TO {};",
        app.name
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("avatar_info") && w.contains(&grant)),
        "the update says whom to grant it: {warnings:?}"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_init_privs i
              WHERE i.objoid = 'avatar.avatar_info(uuid)'::regprocedure
                AND pg_catalog.array_to_string(i.initprivs, ',') ~ 'info_'"
        ),
        0,
        "no role's grant is taken for the extension's own"
    );
    for role in [&app, &nobody] {
        let refused = role
            .connect()
            .query_one("SELECT * FROM avatar.avatar_info($1)", &[&id]);
        assert_eq!(
            sqlstate(refused),
            "42501",
            "{} until granted again",
            role.name
        );
    }
    c.batch_execute(&grant).unwrap();
    let row = app
        .connect()
        .query_one(
            "SELECT width, rating, description FROM avatar.avatar_info($1)",
            &[&id],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i32>(0),
            row.get::<_, String>(1),
            row.get::<_, Option<String>>(2)
        ),
        (60, "g".to_string(), None),
        "an avatar from before is rated g, without alt text"
    );
    let dump = pg_program("pg_dump")
        .args(["--dbname", &db.conninfo(), "--schema-only"])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.lines().any(
            |line| line.starts_with("GRANT ALL ON FUNCTION avatar.avatar_info(")
                && line.ends_with(&format!(" TO {};", app.name))
        ),
        "the grant made after the update is dumped"
    );
}

/// A view over `avatar_info` stops the update, which says why, and
/// changes nothing.
#[test]
fn a_view_over_avatar_info_stops_the_update_cleanly() {
    let db = TestDb::without_extension("upgrade_info_view");
    let mut c = db.connect();
    c.batch_execute(
        "CREATE EXTENSION pg_avatar VERSION '0.2.0';
         CREATE VIEW mine AS SELECT * FROM avatar.avatar_info('00000000-0000-0000-0000-000000000000');",
    )
    .unwrap();
    let refused = c.batch_execute("ALTER EXTENSION pg_avatar UPDATE");
    assert_eq!(sqlstate(refused), "2BP01", "dependent objects");
    let version: String = c
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_avatar'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, "0.2.0");
    c.batch_execute("DROP VIEW mine; ALTER EXTENSION pg_avatar UPDATE")
        .expect("without the view it updates");
}
