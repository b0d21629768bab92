//! Every SECURITY DEFINER function pins its search_path, and so does the
//! check pg_avatar runs as a memoizing transaction commits, so a caller who
//! puts look-alike operators and functions first on theirs runs none of
//! them.

use pg_avatar_tests::*;

#[test]
fn a_callers_search_path_cannot_hijack_definer_functions() {
    let db = TestDb::new("hijack");
    let mallory = format!("{}_mallory", db.name);
    db.connect()
        .batch_execute(&format!(
            "CREATE ROLE {mallory} LOGIN;
             CREATE SCHEMA {mallory} AUTHORIZATION {mallory};
             GRANT EXECUTE ON FUNCTION avatar.avatar_set(text, bytea),
                 avatar.avatar_get(uuid, integer), avatar.avatar_id(text),
                 avatar.avatar_sha1(uuid), avatar.avatar_info(uuid),
                 avatar.avatar_delete(text) TO {mallory};"
        ))
        .unwrap();
    let mut m = connect(&db.conninfo_as(&mallory));
    // Each trap records that it ran; run with the definer's rights, it
    // could do anything the extension's owner can.
    m.batch_execute(&format!(
        "CREATE TABLE {mallory}.ran (trap text);
         GRANT INSERT ON {mallory}.ran TO PUBLIC;
         CREATE FUNCTION {mallory}.eq_uuid(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO {mallory}.ran VALUES ('uuid ='); RETURN true; END $$;
         CREATE OPERATOR {mallory}.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = {mallory}.eq_uuid);
         CREATE FUNCTION {mallory}.eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO {mallory}.ran VALUES ('text ='); RETURN true; END $$;
         CREATE OPERATOR {mallory}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {mallory}.eq_text);
         CREATE FUNCTION {mallory}.eq_name(name, name) RETURNS boolean LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO {mallory}.ran VALUES ('name ='); RETURN true; END $$;
         CREATE OPERATOR {mallory}.= (LEFTARG = name, RIGHTARG = name, FUNCTION = {mallory}.eq_name);
         CREATE FUNCTION {mallory}.now() RETURNS timestamptz LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO {mallory}.ran VALUES ('now()'); RETURN 'epoch'; END $$;
         CREATE FUNCTION {mallory}.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO {mallory}.ran VALUES ('pg_notify'); END $$;
         SET search_path = {mallory}, pg_catalog;"
    ))
    .unwrap();
    // The traps work when a query does resolve through this search_path.
    m.batch_execute("SELECT gen_random_uuid() = gen_random_uuid()")
        .unwrap();
    let traps = |m: &mut postgres::Client| -> i64 {
        m.query_one(&format!("SELECT count(*) FROM {mallory}.ran"), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(
        traps(&mut m),
        1,
        "the trap operator is live for plain queries"
    );

    let id = set(&mut m, "users,1", &png(120, 80)).unwrap();
    assert!(!get(&mut m, id, 64).unwrap().unwrap().is_empty());
    assert!(!get(&mut m, id, 64).unwrap().unwrap().is_empty());
    let found: Option<uuid::Uuid> = m
        .query_one("SELECT avatar.avatar_id('users,1')", &[])
        .unwrap()
        .get(0);
    assert_eq!(found, Some(id));
    m.batch_execute(&format!(
        "SELECT avatar.avatar_sha1('{id}'); SELECT * FROM avatar.avatar_info('{id}');"
    ))
    .unwrap();
    let deleted: bool = m
        .query_one("SELECT avatar.avatar_delete('users,1')", &[])
        .unwrap()
        .get(0);
    assert!(deleted);
    assert_eq!(
        traps(&mut m),
        1,
        "no trap ran inside pg_avatar's functions, nor at their commits"
    );
    drop(m);
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "DROP SCHEMA {mallory} CASCADE; REVOKE ALL ON FUNCTION avatar.avatar_set(text, bytea),
                 avatar.avatar_get(uuid, integer), avatar.avatar_id(text),
                 avatar.avatar_sha1(uuid), avatar.avatar_info(uuid),
                 avatar.avatar_delete(text) FROM {mallory}; DROP ROLE {mallory};"
        ))
        .unwrap();
}

/// A parameter compares under its caller's collation. The app role of the
/// README, with a case- and punctuation-blind collation of its own, names
/// one resource in each call; each call acts on that one alone, never on
/// the look-alikes beside it (the second review's finding).
#[test]
fn a_callers_collation_does_not_choose_the_rows() {
    let db = TestDb::new("collation");
    let app = Role::as_in_readme(&db, "app", "app");
    let mut admin = db.connect();
    let look_alikes = ["USERS,1", "users1", "ÜSERS,1"];
    for resource in std::iter::once("users,1").chain(look_alikes) {
        set(&mut admin, resource, &png(40, 40)).unwrap();
        admin
            .execute(
                "SELECT avatar.avatar_set_email($1, $1 || '@example.org')",
                &[&resource.replace(',', "")],
            )
            .ok();
    }
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {a} AUTHORIZATION {a}",
            a = app.name
        ))
        .unwrap();
    let mut c = app.connect();
    c.batch_execute(&format!(
        "CREATE COLLATION {a}.blind (provider = icu, locale = 'und-u-ka-shifted-ks-level1',
                                     deterministic = false)",
        a = app.name
    ))
    .unwrap();
    let blind = |sql: &str| sql.replace("$R", &format!("'users,1' COLLATE {}.blind", app.name));
    for statement in [
        "SELECT avatar.avatar_set_rating($R, 'x')",
        "SELECT avatar.avatar_set_description($R, 'only users,1')",
        "SELECT avatar.avatar_disable($R)",
        "SELECT avatar.avatar_enable($R)",
        "SELECT avatar.avatar_id($R)",
    ] {
        c.batch_execute(&blind(statement))
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    for resource in look_alikes {
        let row = admin
            .query_one(
                "SELECT rating, description FROM avatar.avatar WHERE resource = $1",
                &[&resource],
            )
            .unwrap();
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, Option<String>>(1)),
            ("g".to_string(), None),
            "{resource} was not named"
        );
    }
    let id: Option<Uuid> = c
        .query_one(&blind("SELECT avatar.avatar_id($R)"), &[])
        .unwrap()
        .get(0);
    assert_eq!(id, avatar_of(&mut admin, "users,1"));
    c.batch_execute(&blind("SELECT avatar.avatar_wipe($R)"))
        .unwrap();
    c.batch_execute(&blind("SELECT avatar.avatar_delete($R)"))
        .unwrap();
    for resource in look_alikes {
        assert!(
            avatar_of(&mut admin, resource).is_some(),
            "{resource} was not wiped"
        );
    }
    assert_eq!(avatar_of(&mut admin, "users,1"), None, "the one named was");
}
