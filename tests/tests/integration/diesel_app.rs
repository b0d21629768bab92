//! A small diesel application using `#[derive(Avatar)]`, against the real
//! extension: the way an app would use diesel-avatar.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_avatar::functions::{
    avatar_by_digest, avatar_get, avatar_id, avatar_set, avatar_set_email, avatar_sha1, avatar_size,
};
use diesel_avatar::{Avatar, AvatarUrls};
use pg_avatar_tests::{jpeg, png, TestDb};

mod schema {
    diesel::table! {
        users (id) {
            id -> Int4,
            name -> Text,
        }
    }

    diesel::table! {
        memberships (org, login) {
            org -> Int8,
            login -> Text,
        }
    }
}
use schema::{memberships, users};

#[derive(Queryable, Selectable, Identifiable, Avatar, Debug)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct User {
    id: i32,
    name: String,
}

#[derive(Queryable, Identifiable, Avatar, Debug)]
#[diesel(table_name = memberships, primary_key(org, login))]
struct Membership {
    org: i64,
    login: String,
}

fn app() -> (TestDb, PgConnection) {
    let db = TestDb::new("diesel_app");
    let mut conn = PgConnection::establish(&db.conninfo()).unwrap();
    conn.batch_execute(
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE memberships (org int8, login text, PRIMARY KEY (org, login));",
    )
    .unwrap();
    (db, conn)
}

fn new_user(conn: &mut PgConnection, name: &str) -> User {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .returning(User::as_returning())
        .get_result(conn)
        .unwrap()
}

#[test]
fn set_get_url_delete() {
    let (_db, mut conn) = app();
    let ada = new_user(&mut conn, "Ada");
    assert_eq!(
        (ada.name.as_str(), ada.avatar_resource()),
        ("Ada", format!("users,{}", ada.id))
    );
    assert_eq!(ada.avatar_id(&mut conn).unwrap(), None);
    assert_eq!(ada.avatar(&mut conn, 64).unwrap(), None);

    let id = ada.set_avatar(&mut conn, &png(300, 200)).unwrap();
    assert_eq!(ada.avatar_id(&mut conn).unwrap(), Some(id));
    let thumb = ada.avatar(&mut conn, 64).unwrap().expect("an avatar");
    assert_eq!(image::load_from_memory(&thumb).unwrap().width(), 64);

    let urls = AvatarUrls::new(
        "https://cdn.example.com/static",
        "app_db",
        b"a secret of sixteen+ bytes",
    )
    .unwrap();
    let url = ada
        .avatar_url(&mut conn, &urls, 128)
        .unwrap()
        .expect("a URL");
    assert!(
        url.as_str()
            .starts_with("https://cdn.example.com/static/avatar/"),
        "{url}"
    );
    assert!(url.as_str().contains(&id.simple().to_string()));
    assert!(
        !url.as_str().contains("app_db"),
        "the database name never appears"
    );

    // A new image: same id, new version in the URL.
    assert_eq!(ada.set_avatar(&mut conn, &jpeg(120, 120)).unwrap(), id);
    let url2 = ada.avatar_url(&mut conn, &urls, 128).unwrap().unwrap();
    assert_ne!(url, url2);
    assert_eq!(url.path(), url2.path());

    assert!(ada.delete_avatar(&mut conn).unwrap());
    assert!(!ada.delete_avatar(&mut conn).unwrap());
    assert_eq!(ada.avatar_url(&mut conn, &urls, 128).unwrap(), None);
}

#[test]
fn the_avatar_or_a_placeholder_for_the_name_in_one_call() {
    let (_db, mut conn) = app();
    let ada = new_user(&mut conn, "Ada");
    let letter = ada
        .avatar_or_default(&mut conn, 64, "initial", &ada.name)
        .unwrap();
    assert_eq!(image::load_from_memory(&letter).unwrap().width(), 64);
    let drawn: Vec<u8> = diesel::select(diesel_avatar::functions::avatar_default(
        "initial", "Ada", 64,
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(letter, drawn, "the placeholder is drawn from the name");

    ada.set_avatar(&mut conn, &png(90, 90)).unwrap();
    let own = ada
        .avatar_or_default(&mut conn, 64, "initial", &ada.name)
        .unwrap();
    assert_eq!(Some(own), ada.avatar(&mut conn, 64).unwrap());
    let bob = new_user(&mut conn, "Bob");
    let unknown = bob.avatar_or_default(&mut conn, 64, "sparkles", &bob.name);
    assert!(
        unknown.is_err_and(|e| e.to_string().contains("not a kind of default avatar")),
        "an unknown kind is an error, not an empty image"
    );
}

#[test]
fn invalid_uploads_are_typed_apart_from_database_errors() {
    let (_db, mut conn) = app();
    let user = new_user(&mut conn, "Bob");
    let mut truncated = png(64, 64);
    truncated.truncate(50);
    let bomb = avatar_pipeline::samples::png_claiming(100_000, 100_000);
    for (what, bytes) in [
        ("empty", &b""[..]),
        ("text", &b"hello"[..]),
        ("truncated", &truncated[..]),
        ("bomb", &bomb[..]),
    ] {
        let error = user.set_avatar(&mut conn, bytes).unwrap_err();
        assert!(error.is_invalid_input(), "{what}: {error:?}");
    }
    // What the SQL-language functions refuse is bad input too: one error
    // contract for everything the extension raises.
    let refused: [(&str, QueryResult<()>); 3] = [
        (
            "no address",
            diesel::select(avatar_set_email(user.avatar_resource(), "not an address"))
                .execute(&mut conn)
                .map(drop),
        ),
        (
            "not a digest",
            diesel::select(avatar_by_digest("xyz"))
                .get_result::<Option<uuid::Uuid>>(&mut conn)
                .map(drop),
        ),
        (
            "the fallback's resource",
            diesel::select(avatar_set("libravatar:0", png(8, 8)))
                .get_result::<uuid::Uuid>(&mut conn)
                .map(drop),
        ),
    ];
    for (what, result) in refused {
        let error = diesel_avatar::Error::from(result.unwrap_err());
        assert!(error.is_invalid_input(), "{what}: {error:?}");
    }
    user.set_avatar(&mut conn, &png(32, 32))
        .expect("the connection is fine after rejections");
    assert!(
        user.avatar(&mut conn, 5000).unwrap_err().is_invalid_input(),
        "size out of range"
    );

    // Without the extension, the same call is a database error, not bad input.
    diesel::sql_query("DROP EXTENSION pg_avatar")
        .execute(&mut conn)
        .unwrap();
    let error = user.set_avatar(&mut conn, &png(8, 8)).unwrap_err();
    assert!(!error.is_invalid_input(), "{error:?}");
}

#[test]
fn composite_keys_get_unambiguous_resources() {
    let (_db, mut conn) = app();
    let tricky = [(1, "a,b"), (1, "a%2Cb"), (12, "x"), (1, "2,x")];
    for (org, login) in tricky {
        diesel::insert_into(memberships::table)
            .values((memberships::org.eq(org), memberships::login.eq(login)))
            .execute(&mut conn)
            .unwrap();
    }
    let rows: Vec<Membership> = memberships::table
        .order((memberships::org, memberships::login))
        .load(&mut conn)
        .unwrap();
    let resources: Vec<String> = rows.iter().map(Avatar::avatar_resource).collect();
    let unique: std::collections::HashSet<_> = resources.iter().collect();
    assert_eq!(unique.len(), rows.len(), "{resources:?}");
    assert!(
        resources.contains(&"memberships,1,a%2Cb".to_string()),
        "{resources:?}"
    );

    // The database computes exactly the same strings.
    let from_sql: Vec<String> = memberships::table
        .order((memberships::org, memberships::login))
        .select(Membership::avatar_resource_sql())
        .load(&mut conn)
        .unwrap();
    assert_eq!(from_sql, resources);

    for row in &rows {
        row.set_avatar(&mut conn, &png(40, 40)).unwrap();
    }
    let ids: std::collections::HashSet<_> = rows
        .iter()
        .map(|r| r.avatar_id(&mut conn).unwrap().unwrap())
        .collect();
    assert_eq!(ids.len(), rows.len());
}

#[test]
fn one_query_lists_users_with_avatar_ids_and_urls() {
    let (_db, mut conn) = app();
    let people: Vec<User> = ["Ada", "Bob", "Cy"]
        .iter()
        .map(|n| new_user(&mut conn, n))
        .collect();
    people[0].set_avatar(&mut conn, &png(90, 90)).unwrap();
    people[2].set_avatar(&mut conn, &png(70, 50)).unwrap();

    let resource = User::avatar_resource_sql;
    let listing: Vec<(String, Option<uuid::Uuid>, Option<String>, i32)> = users::table
        .order(users::id)
        .select((
            users::name,
            avatar_id(resource()),
            avatar_sha1(avatar_id(resource())),
            avatar_size(45),
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(listing.len(), 3);
    assert!(listing[0].1.is_some() && listing[0].2.is_some());
    assert_eq!(
        (listing[1].1, listing[1].2.as_deref()),
        (None, None),
        "Bob has none"
    );
    assert!(listing[2].1.is_some());
    assert_eq!(listing[0].3, 50);

    let urls = AvatarUrls::new("https://a.example", "db", b"sixteen byte secret!").unwrap();
    let url = urls.url(listing[0].1.unwrap(), listing[0].2.as_deref().unwrap(), 64);
    assert_eq!(
        Some(url),
        people[0].avatar_url(&mut conn, &urls, 64).unwrap(),
        "the listing builds the same URL"
    );

    // Thumbnails for every user with an avatar, in one round trip.
    let thumbs: Vec<Option<Vec<u8>>> = users::table
        .order(users::id)
        .select(avatar_get(avatar_id(resource()), 32))
        .load(&mut conn)
        .unwrap();
    assert_eq!(thumbs.iter().filter(|t| t.is_some()).count(), 2);

    let text: String = diesel::select(diesel::dsl::sql::<Text>("'ok'"))
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(text, "ok");
}

#[test]
fn the_url_size_limit_matches_the_extension() {
    assert_eq!(diesel_avatar::urls::MAX_SIZE, avatar_pipeline::MAX_SIZE);
}

/// The mixin's crop, on every EXIF orientation: the square is chosen in
/// upright pixels, as a person sees the picture; one outside it is the
/// caller's error, with the upright size, and writes nothing.
#[test]
fn set_avatar_cropped_takes_the_upright_square() {
    use avatar_pipeline::samples;
    use diesel_avatar::Crop;
    use image::metadata::Orientation;
    use image::{Rgb, RgbImage};

    let (_db, mut conn) = app();
    let ada = new_user(&mut conn, "Ada");
    // 50 wide, 30 high upright: red on the left 20 px, blue elsewhere.
    let upright = RgbImage::from_fn(50, 30, |x, _| {
        Rgb(if x < 20 { [220, 30, 30] } else { [30, 30, 220] })
    });
    let master_colour = |conn: &mut PgConnection| {
        let jpeg = ada.avatar(conn, 16).unwrap().unwrap();
        image::load_from_memory(&jpeg)
            .unwrap()
            .to_rgb8()
            .get_pixel(8, 8)
            .0
    };
    for exif in 1u16..=8 {
        let orientation = Orientation::from_exif(exif as u8).unwrap();
        let upload =
            samples::jpeg_with_exif_orientation(&samples::stored_for(&upright, orientation), exif);
        for (x, red) in [(2, true), (25, false)] {
            let crop = Crop { x, y: 5, size: 16 };
            ada.set_avatar_cropped(&mut conn, &upload, crop).unwrap();
            let [r, _, b] = master_colour(&mut conn);
            assert_eq!(r > b, red, "orientation {exif}, crop at x = {x}");
        }
        let outside = Crop {
            x: 40,
            y: 0,
            size: 20,
        };
        let refused = ada
            .set_avatar_cropped(&mut conn, &upload, outside)
            .unwrap_err();
        assert!(refused.is_invalid_input(), "orientation {exif}: {refused}");
        assert!(
            refused.to_string().contains("50x30"),
            "orientation {exif}: {refused}"
        );
        let [r, _, b] = master_colour(&mut conn);
        assert!(b > r, "orientation {exif}: the refused crop wrote nothing");
    }
    let huge = Crop {
        x: u32::MAX,
        y: 0,
        size: u32::MAX,
    };
    assert!(ada
        .set_avatar_cropped(&mut conn, &png(40, 40), huge)
        .unwrap_err()
        .is_invalid_input());
}

/// Rating and alt text through the mixin, and the `<img>` that carries
/// the alt text with `srcset`.
#[test]
fn rating_alt_text_srcset_and_img() {
    use diesel_avatar::Rating;

    let (_db, mut conn) = app();
    let ada = new_user(&mut conn, "Ada");
    let urls = AvatarUrls::new("https://cdn.example.com", "app", b"0123456789abcdef0123").unwrap();
    assert_eq!(ada.avatar_img(&mut conn, &urls, 48, "Ada").unwrap(), None);
    assert!(
        !ada.set_avatar_rating(&mut conn, Rating::Pg).unwrap(),
        "no avatar yet"
    );

    let id = ada.set_avatar(&mut conn, &png(300, 300)).unwrap();
    assert!(ada.set_avatar_rating(&mut conn, Rating::R).unwrap());
    let img = ada
        .avatar_img(&mut conn, &urls, 48, "Ada's avatar")
        .unwrap()
        .unwrap();
    assert_eq!(
        img.alt, "Ada's avatar",
        "without a description, the caller's alt"
    );
    assert!(ada
        .set_avatar_description(&mut conn, Some("Ada <at> her \"desk\""))
        .unwrap());
    let img = ada
        .avatar_img(&mut conn, &urls, 48, "Ada's avatar")
        .unwrap()
        .unwrap();
    let sha1: String = diesel::select(avatar_sha1(Some(id)))
        .get_result::<Option<String>>(&mut conn)
        .unwrap()
        .unwrap();
    assert_eq!(img, urls.img(id, &sha1, 48, "Ada <at> her \"desk\""));
    let html = img.to_string();
    assert!(
        html.contains(r#"alt="Ada &lt;at&gt; her &quot;desk&quot;""#),
        "{html}"
    );
    assert_eq!(
        ada.avatar_srcset(&mut conn, &urls, 48).unwrap().unwrap(),
        urls.srcset(id, &sha1, 48)
    );
    let too_long = "x".repeat(diesel_avatar::contract::limits::MAX_DESCRIPTION_CHARS + 1);
    assert!(ada
        .set_avatar_description(&mut conn, Some(&too_long))
        .unwrap_err()
        .is_invalid_input());
    let nul = ada
        .set_avatar_description(&mut conn, Some("a\0b"))
        .unwrap_err();
    assert!(nul.is_invalid_input(), "a NUL is the caller's input: {nul}");
    assert!(ada.set_avatar_description(&mut conn, None).unwrap());
    let img = ada
        .avatar_img(&mut conn, &urls, 48, "fallback")
        .unwrap()
        .unwrap();
    assert_eq!(img.alt, "fallback", "cleared");
    let (rating, description): (String, Option<String>) =
        diesel::sql_query("SELECT rating, description FROM avatar.avatar_info($1)")
            .bind::<diesel::sql_types::Uuid, _>(id)
            .get_result::<Info>(&mut conn)
            .map(|i| (i.rating, i.description))
            .unwrap();
    assert_eq!((rating.as_str(), description), ("r", None));
}

#[derive(QueryableByName)]
struct Info {
    #[diesel(sql_type = Text)]
    rating: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    description: Option<String>,
}
