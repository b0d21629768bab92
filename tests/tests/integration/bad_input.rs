//! Every kind of bad input: a fitting SQLSTATE, nothing written, and the
//! backend still serving.

use avatar_pipeline::samples;
use pg_avatar_tests::*;

#[test]
fn bad_input_gets_a_sqlstate_and_writes_nothing() {
    let db = TestDb::new("bad");
    let mut c = db.connect();
    let id = set(&mut c, "users,1", &png(100, 100)).unwrap();
    get(&mut c, id, 64).unwrap();
    let intact = (master_sha1(&mut c, id), cache_rows(&mut c, id));

    let png = png(64, 64);
    let mut corrupt = png.clone();
    corrupt[60..90].fill(0xAA);
    let cases: &[(&str, &str, &[u8])] = &[
        ("empty", "22023", b""),
        ("random bytes", "22023", b"\x13\x37 this is not an image"),
        ("TIFF", "22023", b"II*\0\x08\0\0\0\0\0"),
        ("truncated PNG", "22P03", &png[..png.len() / 2]),
        ("corrupt PNG", "22P03", &corrupt),
        ("zero-width PNG", "22P03", &samples::png_claiming(0, 64)),
        (
            "PNG bomb",
            "54000",
            &samples::png_claiming(100_000, 100_000),
        ),
    ];
    for (what, code, bytes) in cases {
        assert_eq!(sqlstate(set(&mut c, "users,1", bytes)), *code, "{what}");
        assert_eq!(
            sqlstate(set(&mut c, "users,2", bytes)),
            *code,
            "{what}, new resource"
        );
    }
    let sql_cases = [
        (
            "NULL image",
            "22004",
            "SELECT avatar.avatar_set('users,1', NULL)",
        ),
        (
            "NULL resource",
            "22004",
            "SELECT avatar.avatar_set(NULL, '\\x00')",
        ),
        (
            "blank resource",
            "22023",
            "SELECT avatar.avatar_set(' ', '\\x00')",
        ),
        (
            "size 0",
            "22023",
            "SELECT avatar.avatar_get(gen_random_uuid(), 0)",
        ),
        (
            "size 2049",
            "22023",
            "SELECT avatar.avatar_get(gen_random_uuid(), 2049)",
        ),
        ("negative size", "22023", "SELECT avatar.avatar_size(-5)"),
        (
            "malformed id",
            "22P02",
            "SELECT avatar.avatar_get('not-a-uuid', 64)",
        ),
        (
            "an address for the fallback's resource",
            "22023",
            "SELECT avatar.avatar_set_email('libravatar:x', 'ada@example.org')",
        ),
        (
            "an address for an overlong resource",
            "22023",
            "SELECT avatar.avatar_set_email(repeat('x', 2000), 'ada@example.org')",
        ),
        (
            "an unknown format",
            "22023",
            "SELECT avatar.avatar_get(gen_random_uuid(), 64, 'gif')",
        ),
    ];
    for (what, code, sql) in sql_cases {
        assert_eq!(sqlstate(c.batch_execute(sql)), code, "{what}");
    }
    // The fallback's copies live under `libravatar:`; nobody else may write there.
    for resource in ["libravatar:", &format!("libravatar:{}", "0".repeat(64))] {
        assert_eq!(sqlstate(set(&mut c, resource, &png)), "22023", "{resource}");
    }
    c.batch_execute("SET pg_avatar.max_input_bytes = '1kB'")
        .unwrap();
    assert_eq!(
        sqlstate(set(&mut c, "users,1", &png)),
        "54000",
        "over max_input_bytes"
    );
    c.batch_execute("RESET pg_avatar.max_input_bytes").unwrap();

    assert_eq!(
        (master_sha1(&mut c, id), cache_rows(&mut c, id)),
        intact,
        "the avatar is untouched"
    );
    let avatars: i64 = c
        .query_one("SELECT count(*) FROM avatar.avatar", &[])
        .unwrap()
        .get(0);
    assert_eq!(avatars, 1, "no failed upload left a row");
    assert!(
        c.is_valid(std::time::Duration::from_secs(5)).is_ok(),
        "the backend is alive"
    );
}

/// A progressive JPEG may have as many scans as an attacker likes, each
/// making the decoder walk every block again, inside a decoder that cannot
/// be interrupted: past a hundred, it is refused before decoding, however
/// large the image (the large one takes the half-size decoder).
#[test]
fn a_scan_bomb_is_refused_before_decoding() {
    let db = TestDb::new("scans");
    let mut c = db.connect();
    c.batch_execute("SET statement_timeout = '10s'").unwrap();
    for side in [64, 4200] {
        let image = samples::photo(side, side);
        let bomb = samples::progressive_jpeg_with_scans(&image, 200);
        let started = std::time::Instant::now();
        assert_eq!(
            sqlstate(set(&mut c, "users,1", &bomb)),
            "54000",
            "{side} px"
        );
        assert!(
            started.elapsed().as_secs() < 5,
            "{side} px: {:?}",
            started.elapsed()
        );
    }
    let ordinary = samples::progressive_jpeg_with_scans(&samples::photo(64, 64), 0);
    set(&mut c, "users,1", &ordinary).expect("an ordinary progressive JPEG");
}

/// Refinement scans of nothing cost a few bytes each and a decoder's pass
/// over every block: under the scan limit, a hundred of them over a 50 MP
/// image took seconds no cancel could stop, and four thousand as long to
/// walk. The blocks a file's scans cover between them are bounded by the
/// pixel limit, and counted as the walk goes.
#[test]
fn a_refinement_bomb_is_refused_before_decoding() {
    let db = TestDb::new("passes");
    let mut c = db.connect();
    c.batch_execute("SET statement_timeout = '20s'").unwrap();
    for refinements in [98, 4000] {
        let bomb = samples::refinement_bomb(7070, refinements);
        let started = std::time::Instant::now();
        assert_eq!(
            sqlstate(set(&mut c, "users,1", &bomb)),
            "54000",
            "{refinements} refinements in {} bytes",
            bomb.len()
        );
        assert!(
            started.elapsed().as_secs() < 2,
            "{refinements} refinements: {:?}",
            started.elapsed()
        );
    }
    // As many passes as the limit allows, over a smaller image.
    set(&mut c, "users,1", &samples::refinement_bomb(2000, 14)).expect("sixteen passes");
}

#[test]
fn statement_timeout_cancels_a_long_decode() {
    let db = TestDb::new("timeout");
    let mut c = db.connect();
    // About 48 megapixels: well under the pixel limit, far over 20 ms of work.
    let big = jpeg(8000, 6000);
    c.batch_execute("SET statement_timeout = '20ms'").unwrap();
    assert_eq!(sqlstate(set(&mut c, "users,1", &big)), "57014");
    c.batch_execute("RESET statement_timeout").unwrap();
    let avatars: i64 = c
        .query_one("SELECT count(*) FROM avatar.avatar", &[])
        .unwrap()
        .get(0);
    assert_eq!(avatars, 0);
}
