//! Attacker 1: a tenant of a shared database, who owns its own tables and
//! holds exactly the grants the README recommends for a table owner
//! (`app_owner`). Whatever it does with `attach`, its tables and its own
//! types, functions, casts and policies, it never runs code with the
//! extension owner's rights, and it never deletes an avatar that belongs
//! to another table.

use pg_avatar_tests::*;

/// A tenant with a schema of its own and the README's `app_owner` grants.
fn tenant(db: &TestDb) -> Role {
    let role = Role::as_in_readme(db, "tenant", "app_owner");
    db.connect()
        .batch_execute(&format!(
            "CREATE SCHEMA {r} AUTHORIZATION {r};
             -- Where the tenant's traps write what they saw: they run as
             -- whoever calls them, so anyone may write here.
             CREATE TABLE public.{r}_seen (who text, superuser boolean);
             GRANT INSERT ON public.{r}_seen TO PUBLIC;",
            r = role.name
        ))
        .unwrap();
    role
}

/// Who ran the tenant's traps, by `current_user`.
fn trap_runners(db: &TestDb, tenant: &Role) -> Vec<String> {
    db.connect()
        .query(&format!("SELECT who FROM public.{}_seen", tenant.name), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A plpgsql body that records who runs it and tries to make the tenant a
/// superuser, which only works when it runs with a superuser's rights.
fn escalation(tenant: &Role) -> String {
    format!(
        "BEGIN
             INSERT INTO public.{r}_seen
             SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
             BEGIN
                 EXECUTE 'ALTER ROLE {r} SUPERUSER';
             EXCEPTION WHEN insufficient_privilege THEN NULL;
             END;",
        r = tenant.name
    )
}

/// The review's exploit: a column of an enum whose cast to `json` runs the
/// tenant's function. `to_jsonb(OLD)` in a SECURITY DEFINER trigger ran it
/// as the extension's owner. Both when the tenant attaches its own table,
/// and when the table was attached by someone else and the tenant, its
/// owner, adds the column afterwards.
#[test]
fn a_cast_on_a_column_of_the_tenants_type_runs_with_the_tenants_rights_only() {
    for attached_by_admin in [false, true] {
        let db = TestDb::new("tenant_cast");
        let tenant = tenant(&db);
        let t = &tenant.name;
        let mut admin = db.connect();
        let mut c = tenant.connect();
        c.batch_execute(&format!(
            "CREATE TYPE {t}.mood AS ENUM ('happy');
             CREATE FUNCTION {t}.mood_json({t}.mood) RETURNS json LANGUAGE plpgsql AS $$
                 {body} RETURN '\"happy\"'::json; END $$;
             CREATE CAST ({t}.mood AS json) WITH FUNCTION {t}.mood_json({t}.mood);
             CREATE TABLE {t}.users (id integer PRIMARY KEY);
             INSERT INTO {t}.users VALUES (42);",
            body = escalation(&tenant)
        ))
        .unwrap();
        if attached_by_admin {
            admin
                .batch_execute(&format!("SELECT avatar.attach('{t}.users', 'id')"))
                .unwrap();
        } else {
            c.batch_execute(&format!("SELECT avatar.attach('{t}.users', 'id')"))
                .unwrap();
        }
        c.batch_execute(&format!(
            "ALTER TABLE {t}.users ADD COLUMN mood {t}.mood DEFAULT 'happy';"
        ))
        .unwrap();
        set(&mut admin, "users,42", &png(40, 40)).unwrap();

        c.batch_execute(&format!("DELETE FROM {t}.users WHERE id = 42"))
            .unwrap();
        assert!(
            !tenant.is_superuser(),
            "the tenant became a superuser (attached by the admin: {attached_by_admin})"
        );
        assert!(
            trap_runners(&db, &tenant).iter().all(|who| who == t),
            "the tenant's cast ran as someone else: {:?}",
            trap_runners(&db, &tenant)
        );
        assert_eq!(
            avatar_of(&mut admin, "users,42"),
            None,
            "the row's avatar is gone"
        );
    }
}

/// Keys the derive does not support are refused when attaching, and a key
/// column whose type is changed to the tenant's own afterwards is never
/// turned into text with elevated rights.
#[test]
fn only_the_derives_key_types_are_read() {
    let db = TestDb::new("tenant_keys");
    let tenant = tenant(&db);
    let t = &tenant.name;
    let mut c = tenant.connect();
    c.batch_execute(&format!(
        "CREATE TYPE {t}.code AS ENUM ('a', 'b');
         CREATE TABLE {t}.things (code {t}.code PRIMARY KEY, n numeric, d {t}.code);
         CREATE DOMAIN {t}.id AS integer CHECK (VALUE > 0);
         CREATE TABLE {t}.wrapped (id {t}.id PRIMARY KEY);"
    ))
    .unwrap();
    for (table, column) in [("things", "code"), ("things", "n"), ("wrapped", "id")] {
        assert_eq!(
            sqlstate(c.batch_execute(&format!("SELECT avatar.attach('{t}.{table}', '{column}')"))),
            "42804",
            "{table}.{column} is not a key type the derive supports"
        );
    }
    // Attached with a supported key, then changed to the tenant's type.
    c.batch_execute(&format!(
        "CREATE FUNCTION {t}.to_text(integer) RETURNS {t}.code LANGUAGE plpgsql AS $$
             {body} RETURN 'a'; END $$;
         CREATE TABLE {t}.users (id integer PRIMARY KEY);
         INSERT INTO {t}.users VALUES (42);
         SELECT avatar.attach('{t}.users', 'id');
         ALTER TABLE {t}.users ALTER COLUMN id TYPE {t}.code USING {t}.to_text(id);",
        body = escalation(&tenant)
    ))
    .unwrap_or_else(|e| {
        // Refusing the change is as good as surviving it.
        assert_eq!(e.code().map(|c| c.code()), Some("42804"), "{e}");
    });
    let _ = c.batch_execute(&format!("DELETE FROM {t}.users"));
    assert!(!tenant.is_superuser());
    assert!(trap_runners(&db, &tenant).iter().all(|who| who == t));
}

/// The review's second finding: the trigger trusted `TG_TABLE_NAME` and its
/// arguments, so a temporary table named `users` deleted `users,42`, which
/// belongs to another table. Neither a trigger made by hand nor `attach`
/// of a temporary table, nor a second table called `users`, may do that.
#[test]
fn a_tenant_cannot_delete_another_tables_avatars() {
    let db = TestDb::new("tenant_names");
    let tenant = tenant(&db);
    let t = &tenant.name;
    let mut admin = db.connect();
    admin
        .batch_execute(
            "CREATE TABLE public.users (id integer PRIMARY KEY);
             INSERT INTO public.users VALUES (42);
             SELECT avatar.attach('public.users', 'id');",
        )
        .unwrap();
    set(&mut admin, "users,42", &png(40, 40)).unwrap();
    let mut c = tenant.connect();

    // By hand, as 0.2.0's README allowed: the tenant may not create the
    // trigger, and if an old grant let it, the trigger refuses to act.
    admin
        .batch_execute(&format!(
            "GRANT EXECUTE ON FUNCTION avatar.avatar_owner_deleted() TO {t}"
        ))
        .unwrap();
    c.batch_execute(
        "CREATE TEMPORARY TABLE users (id integer, other text);
         INSERT INTO users VALUES (42, '42');",
    )
    .unwrap();
    let by_hand = c.batch_execute(
        "CREATE TRIGGER avatar_owner_deleted AFTER DELETE ON pg_temp.users
             FOR EACH ROW EXECUTE FUNCTION avatar.avatar_owner_deleted('id')",
    );
    if by_hand.is_ok() {
        assert_eq!(
            sqlstate(c.batch_execute("DELETE FROM pg_temp.users")),
            "55000",
            "the trigger refuses a table that was never attached"
        );
    }
    assert!(avatar_of(&mut admin, "users,42").is_some());

    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.attach('pg_temp.users', 'id')")),
        "22023",
        "a temporary table cannot be attached"
    );
    c.batch_execute(&format!(
        "CREATE TABLE {t}.users (id integer PRIMARY KEY);
         INSERT INTO {t}.users VALUES (42);"
    ))
    .unwrap();
    assert_eq!(
        sqlstate(c.batch_execute(&format!("SELECT avatar.attach('{t}.users', 'id')"))),
        "42710",
        "the resource prefix users belongs to public.users"
    );
    let _ = c.batch_execute(&format!("DELETE FROM {t}.users"));
    assert!(
        avatar_of(&mut admin, "users,42").is_some(),
        "public.users' avatar survived"
    );

    // Nor may it attach, or detach, a table it does not own.
    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.attach('public.users', 'id')")),
        "42501"
    );
    assert_eq!(
        sqlstate(c.batch_execute("SELECT avatar.detach('public.users')")),
        "42501"
    );
}

/// Whatever of the tenant's code the trigger cannot help running (a
/// row-level security policy on the attached table, operators and functions
/// on its search_path) runs as the tenant, never as the extension's owner.
#[test]
fn the_tenants_policies_and_search_path_run_with_its_rights_only() {
    let db = TestDb::new("tenant_rls");
    let tenant = tenant(&db);
    let t = &tenant.name;
    let mut admin = db.connect();
    let mut c = tenant.connect();
    c.batch_execute(&format!(
        "CREATE FUNCTION {t}.visible(integer) RETURNS boolean LANGUAGE plpgsql AS $$
             {body} RETURN true; END $$;
         CREATE TABLE {t}.users (id integer, region text) PARTITION BY LIST (region);
         CREATE TABLE {t}.users_eu PARTITION OF {t}.users FOR VALUES IN ('eu');
         CREATE TABLE {t}.users_us PARTITION OF {t}.users FOR VALUES IN ('us');
         ALTER TABLE {t}.users ENABLE ROW LEVEL SECURITY;
         ALTER TABLE {t}.users FORCE ROW LEVEL SECURITY;
         CREATE POLICY everyone ON {t}.users USING ({t}.visible(id));
         INSERT INTO {t}.users VALUES (1, 'eu'), (2, 'eu');
         -- Look-alikes of what pg_avatar's statements use.
         CREATE FUNCTION {t}.eq(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$
             {body} RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
         CREATE OPERATOR {t}.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = {t}.eq);
         CREATE FUNCTION {t}.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
             {body} RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
         CREATE OPERATOR {t}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {t}.eq);
         CREATE FUNCTION {t}.pg_partition_root(regclass) RETURNS regclass LANGUAGE plpgsql AS $$
             {body} RETURN $1; END $$;
         SET search_path = {t}, pg_catalog;
         SELECT avatar.attach('{t}.users', 'id');",
        body = escalation(&tenant)
    ))
    .unwrap();
    set(&mut admin, "users,1", &png(40, 40)).unwrap();
    set(&mut admin, "users,2", &png(40, 40)).unwrap();
    // A move between partitions, a delete, and a delete from a partition.
    c.batch_execute(&format!(
        "UPDATE {t}.users SET region = 'us' WHERE id = 1;
         DELETE FROM {t}.users WHERE id = 2;
         DELETE FROM {t}.users_us WHERE id = 1;
         SELECT avatar.detach('{t}.users');"
    ))
    .unwrap();
    assert!(!tenant.is_superuser());
    let runners = trap_runners(&db, &tenant);
    assert!(
        runners.iter().all(|who| who == t),
        "the tenant's code ran as someone else: {runners:?}"
    );
    assert_eq!(avatar_of(&mut admin, "users,1"), None);
    assert_eq!(avatar_of(&mut admin, "users,2"), None);
}

/// Attaching a table hands its triggers the power to wipe every resource
/// under its prefix, so only a role that may wipe avatars itself may
/// attach: otherwise a tenant with nothing but `attach` could claim `users`
/// before the application does, and delete the application's avatars by
/// deleting its own rows.
#[test]
fn attaching_needs_the_right_to_wipe() {
    let db = TestDb::new("tenant_squat");
    let tenant = tenant(&db);
    let t = &tenant.name;
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "REVOKE EXECUTE ON FUNCTION avatar.avatar_wipe(text) FROM {t}"
        ))
        .unwrap();
    set(&mut admin, "users,42", &png(40, 40)).unwrap();
    let mut c = tenant.connect();
    c.batch_execute(&format!(
        "CREATE TABLE {t}.users (id integer PRIMARY KEY);
         INSERT INTO {t}.users VALUES (42);"
    ))
    .unwrap();
    assert_eq!(
        sqlstate(c.batch_execute(&format!("SELECT avatar.attach('{t}.users', 'id')"))),
        "42501",
        "attach without the right to wipe"
    );
    let _ = c.batch_execute(&format!("DELETE FROM {t}.users"));
    assert!(avatar_of(&mut admin, "users,42").is_some());

    // Granted, as the README grants app_owner, it may.
    admin
        .batch_execute(&format!(
            "GRANT EXECUTE ON FUNCTION avatar.avatar_wipe(text) TO {t}"
        ))
        .unwrap();
    c.batch_execute(&format!("SELECT avatar.attach('{t}.users', 'id')"))
        .unwrap();
}
