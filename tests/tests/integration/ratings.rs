//! Ratings and alt text: set through their functions, refused when bad,
//! read back by avatar_info, and a rating decides what `avatar_by_digest`
//! finds for a request's `r=`.

use avatar_contract::limits::MAX_DESCRIPTION_CHARS;
use avatar_contract::Rating;
use pg_avatar_tests::*;

fn info(c: &mut Client, id: Uuid) -> (String, Option<String>) {
    let row = c
        .query_one(
            "SELECT rating, description FROM avatar.avatar_info($1)",
            &[&id],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn ratings_are_set_refused_and_read_back() {
    let db = TestDb::new("rating");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(40, 40)).unwrap();
    assert_eq!(info(&mut c, id), ("g".into(), None), "g until rated");
    let rate = |c: &mut Client, resource: &str, rating: &str| {
        c.query_one(
            "SELECT avatar.avatar_set_rating($1, $2)",
            &[&resource, &rating],
        )
        .map(|r| r.get::<_, bool>(0))
    };
    for rating in Rating::ALL {
        assert!(rate(&mut c, "users,1", rating.name()).unwrap());
        assert_eq!(info(&mut c, id).0, rating.name());
    }
    assert!(!rate(&mut c, "users,2", "g").unwrap(), "no avatar to rate");
    for bad in ["G", "", "nc-17", "pg ", "x'"] {
        let error = rate(&mut c, "users,1", bad).unwrap_err();
        let db_error = error.as_db_error().unwrap();
        assert_eq!(db_error.code().code(), "22023", "{bad:?}");
        assert_eq!(db_error.hint(), Some("Use 'g', 'pg', 'r' or 'x'."));
    }
    assert_eq!(info(&mut c, id).0, "x", "a refused rating writes nothing");
    let null: Option<&str> = None;
    for (resource, rating) in [(Some("users,1"), null), (null, Some("g"))] {
        let refused = c.query_one(
            "SELECT avatar.avatar_set_rating($1, $2)",
            &[&resource, &rating],
        );
        assert_eq!(sqlstate(refused), "22004", "{resource:?} {rating:?}");
    }
    // The caller's collation decides nothing: a case-blind one neither
    // lets 'G' through as a rating nor fails the check some other way.
    c.batch_execute(
        "CREATE COLLATION blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    )
    .unwrap();
    for statement in [
        "SELECT avatar.avatar_set_rating('users,1', 'G' COLLATE blind)",
        "SELECT avatar.avatar_by_digest(md5('a'), 'PG' COLLATE blind)",
    ] {
        assert_eq!(sqlstate(c.batch_execute(statement)), "22023", "{statement}");
    }
    // A new image keeps the avatar's id and rating (hiding errs on the safe
    // side), and drops the alt text, which described the old one.
    c.execute(
        "SELECT avatar.avatar_set_description('users,1', 'the old one')",
        &[],
    )
    .unwrap();
    assert_eq!(set(&mut c, "users,1", &png(50, 50)).unwrap(), id);
    assert_eq!(info(&mut c, id), ("x".into(), None));
}

#[test]
fn alt_text_is_bounded_and_cleared_by_null() {
    let db = TestDb::new("alt");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(40, 40)).unwrap();
    let describe = |c: &mut Client, resource: Option<&str>, text: Option<&str>| {
        c.query_one(
            "SELECT avatar.avatar_set_description($1, $2)",
            &[&resource, &text],
        )
        .map(|r| r.get::<_, bool>(0))
    };
    let longest = "é".repeat(MAX_DESCRIPTION_CHARS);
    for text in ["Ada at her desk", "<b>&'\"", longest.as_str()] {
        assert!(describe(&mut c, Some("users,1"), Some(text)).unwrap());
        assert_eq!(info(&mut c, id).1.as_deref(), Some(text));
        let read: Option<String> = c
            .query_one("SELECT avatar.avatar_description($1)", &[&id])
            .unwrap()
            .get(0);
        assert_eq!(read.as_deref(), Some(text));
    }
    let too_long = "a".repeat(MAX_DESCRIPTION_CHARS + 1);
    let error = describe(&mut c, Some("users,1"), Some(&too_long)).unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "22023");
    assert!(error.as_db_error().unwrap().hint().is_some());
    assert_eq!(
        info(&mut c, id).1.as_deref(),
        Some(longest.as_str()),
        "nothing written"
    );
    assert_eq!(sqlstate(describe(&mut c, None, Some("x"))), "22004");
    assert!(!describe(&mut c, Some("users,2"), Some("x")).unwrap());
    assert!(describe(&mut c, Some("users,1"), None).unwrap());
    assert_eq!(info(&mut c, id).1, None, "NULL clears it");
    // A disabled avatar's alt text is not served either.
    describe(&mut c, Some("users,1"), Some("hidden")).unwrap();
    c.execute("SELECT avatar.avatar_disable('users,1')", &[])
        .unwrap();
    let read: Option<String> = c
        .query_one("SELECT avatar.avatar_description($1)", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(read, None);
}

#[test]
fn a_digest_finds_an_avatar_only_for_requests_that_accept_its_rating() {
    let db = TestDb::new("rated");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(40, 40)).unwrap();
    c.execute(
        "SELECT avatar.avatar_set_email('users,1', 'ada@example.org')",
        &[],
    )
    .unwrap();
    let md5: String = c
        .query_one("SELECT md5('ada@example.org')", &[])
        .unwrap()
        .get(0);
    let find = |c: &mut Client, accepts: &str| {
        c.query_one("SELECT avatar.avatar_by_digest($1, $2)", &[&md5, &accepts])
            .map(|r| r.get::<_, Option<Uuid>>(0))
    };
    for rated in Rating::ALL {
        c.execute(
            "SELECT avatar.avatar_set_rating('users,1', $1)",
            &[&rated.name()],
        )
        .unwrap();
        for accepts in Rating::ALL {
            let expected = rated.allowed_by(accepts).then_some(id);
            assert_eq!(
                find(&mut c, accepts.name()).unwrap(),
                expected,
                "{rated} for r={accepts}"
            );
        }
    }
    assert_eq!(sqlstate(find(&mut c, "nc-17")), "22023");
}

/// Rating and describing are the application's; reading by rating and
/// exact sizes are the route's; nobody else runs more than the pure
/// functions.
#[test]
fn each_role_runs_exactly_what_the_readme_grants_it() {
    let db = TestDb::new("ratedroles");
    set(&mut db.connect(), "users,1", &png(40, 40)).unwrap();
    let callable = |role: &Role| -> Vec<String> {
        db.connect()
            .query(
                "SELECT p.oid::regprocedure::text FROM pg_proc p
                  WHERE p.pronamespace = 'avatar'::regnamespace
                    AND has_function_privilege($1, p.oid, 'EXECUTE') ORDER BY 1",
                &[&role.name],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let nobody = Role::new(&db, "nobody");
    assert_eq!(
        callable(&nobody),
        [
            "avatar.avatar_default(text,text,integer)",
            "avatar.avatar_default_exact(text,text,integer)",
            "avatar.avatar_resource(text,text[])",
            "avatar.avatar_size(integer)",
        ],
        "PUBLIC runs only the pure functions"
    );
    let app = Role::as_in_readme(&db, "app", "app");
    let reader = Role::as_in_readme(&db, "reader", "avatar_reader");
    for (role, may) in [(&app, true), (&reader, false), (&nobody, false)] {
        let mut c = role.connect();
        for statement in [
            "SELECT avatar.avatar_set_rating('users,1', 'pg')",
            "SELECT avatar.avatar_set_description('users,1', 'x')",
            "SELECT avatar.avatar_set('users,1', '\\x00', crop_x => 0, crop_y => 0, crop_size => 1)",
        ] {
            let result = c.batch_execute(statement);
            if may {
                // Allowed: the last one fails only because the bytes are no image.
                assert!(
                    result.is_ok() || sqlstate(result) == "22023",
                    "{} may: {statement}",
                    role.name
                );
            } else {
                assert_eq!(sqlstate(result), "42501", "{} may not: {statement}", role.name);
            }
        }
    }
    let readers_own = [
        "avatar.avatar_by_digest(text,text)",
        "avatar.avatar_rendition_exact(uuid,integer,text)",
    ];
    let granted = callable(&reader);
    for function in readers_own {
        assert!(
            granted.iter().any(|f| f == function),
            "the reader runs {function}"
        );
    }
}
