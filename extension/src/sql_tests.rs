//! The SQL surface, inside one backend. Each test runs in a transaction
//! that is rolled back; what must commit is in the workspace's `tests/`.

#[pgrx::pg_schema]
mod tests {
    use avatar_pipeline::samples;
    use image::{DynamicImage, GenericImageView, ImageFormat};
    use pgrx::datum::DatumWithOid;
    use pgrx::prelude::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        samples::encode(
            &DynamicImage::ImageRgb8(samples::scene(width, height)),
            ImageFormat::Png,
        )
    }

    fn one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
        Spi::get_one_with_args::<T>(sql, args).expect("query runs")
    }

    fn set(resource: &str, image: &[u8]) -> pgrx::Uuid {
        one(
            "SELECT avatar.avatar_set($1, $2)",
            &[resource.into(), image.into()],
        )
        .expect("an id")
    }

    fn get(id: pgrx::Uuid, size: i32) -> Option<Vec<u8>> {
        one(
            "SELECT avatar.avatar_get($1, $2)",
            &[id.into(), size.into()],
        )
    }

    fn cached(id: pgrx::Uuid) -> i64 {
        one(
            "SELECT count(*) FROM avatar.avatar_cache WHERE avatar_id = $1",
            &[id.into()],
        )
        .unwrap()
    }

    fn dimensions(jpeg: &[u8]) -> (u32, u32) {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
            .expect("a JPEG")
            .dimensions()
    }

    #[pg_test]
    fn get_returns_exactly_the_quantised_size() {
        let id = set("users,1", &png(300, 200));
        for (asked, side) in [
            (1, 1),
            (3, 4),
            (50, 50),
            (65, 70),
            (128, 128),
            (257, 300),
            (2048, 2048),
        ] {
            let jpeg = get(id, asked).expect("an image");
            assert_eq!(dimensions(&jpeg), (side, side), "asked {asked}");
            assert_eq!(
                one::<i32>("SELECT avatar.avatar_size($1)", &[asked.into()]),
                Some(side as i32)
            );
        }
    }

    #[pg_test]
    fn a_hit_returns_the_memoized_bytes() {
        let id = set("users,1", &png(120, 120));
        let first = get(id, 64).unwrap();
        assert_eq!(cached(id), 1);
        Spi::run_with_args(
            "UPDATE avatar.avatar_cache SET image = '\\xffd8ffd9'::bytea WHERE avatar_id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(
            get(id, 64).unwrap(),
            b"\xff\xd8\xff\xd9",
            "served from the cache, not re-rendered"
        );
        assert_ne!(first, b"\xff\xd8\xff\xd9");
    }

    #[pg_test]
    fn replacing_keeps_the_id_and_clears_the_cache() {
        let id = set("users,1", &png(100, 100));
        get(id, 32);
        get(id, 64);
        assert_eq!(cached(id), 2);
        let sha1_before: String =
            one("SELECT sha1 FROM avatar.avatar WHERE id = $1", &[id.into()]).unwrap();
        assert_eq!(set("users,1", &png(90, 140)), id);
        assert_eq!(cached(id), 0);
        let sha1_after: String =
            one("SELECT sha1 FROM avatar.avatar WHERE id = $1", &[id.into()]).unwrap();
        assert_ne!(sha1_before, sha1_after);
        assert_ne!(
            set("users,2", &png(100, 100)),
            id,
            "each resource has its own id"
        );
    }

    #[pg_test]
    fn a_stale_cache_row_is_never_served() {
        let id = set("users,1", &png(100, 100));
        let jpeg = get(id, 64).unwrap();
        // A row from some older master, as a race with avatar_set can leave behind.
        Spi::run_with_args("UPDATE avatar.avatar_cache SET sha1 = repeat('0', 40), image = '\\x00' WHERE avatar_id = $1", &[id.into()]).unwrap();
        assert_eq!(get(id, 64).unwrap(), jpeg, "re-rendered from the master");
        let rows: i64 = one(
            "SELECT count(*) FROM avatar.avatar_cache c JOIN avatar.avatar a ON a.id = c.avatar_id
              WHERE c.avatar_id = $1 AND c.sha1 = a.sha1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(rows, 1, "and memoized beside it, under the master's digest");
        assert_eq!(get(id, 64).unwrap(), jpeg, "a hit now");
    }

    #[pg_test]
    fn each_format_is_rendered_and_memoized_on_its_own() {
        let id = set("users,1", &png(1000, 1000));
        let mut bytes = vec![];
        for (format, expected) in [
            ("jpeg", ImageFormat::Jpeg),
            ("png", ImageFormat::Png),
            ("webp", ImageFormat::WebP),
        ] {
            let image: Vec<u8> = one(
                "SELECT avatar.avatar_get($1, 100, $2)",
                &[id.into(), format.into()],
            )
            .expect("an image");
            assert_eq!(image::guess_format(&image).unwrap(), expected, "{format}");
            let decoded = image::load_from_memory(&image).unwrap();
            assert_eq!(decoded.dimensions(), (100, 100), "{format}");
            let again: Option<Vec<u8>> = one(
                "SELECT avatar.avatar_get($1, 100, $2)",
                &[id.into(), format.into()],
            );
            assert_eq!(again.as_ref(), Some(&image), "{format} memoized");
            bytes.push(image);
        }
        assert_eq!(
            get(id, 100).as_ref(),
            Some(&bytes[0]),
            "jpeg is the default"
        );
        // 100 px in three formats, and the 512 px JPEG they were made from.
        assert_eq!(cached(id), 4);
        let formats: Option<String> = one(
            "SELECT string_agg(format, ',' ORDER BY format) FROM avatar.avatar_cache
              WHERE avatar_id = $1 AND size = 100",
            &[id.into()],
        );
        assert_eq!(formats.as_deref(), Some("jpeg,png,webp"));
    }

    #[pg_test]
    fn renditions_describe_each_format_as_xep_0084_asks() {
        let id = set("users,1", &png(300, 300));
        let rows = Spi::connect(|c| {
            c.select(
                "SELECT format, sha1, bytes, width, height, mime_type
                   FROM avatar.avatar_renditions($1, 60)",
                None,
                &[id.into()],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get::<String>(1).unwrap().unwrap(),
                    r.get::<String>(2).unwrap().unwrap(),
                    r.get::<i32>(3).unwrap().unwrap(),
                    r.get::<i32>(4).unwrap().unwrap(),
                    r.get::<i32>(5).unwrap().unwrap(),
                    r.get::<String>(6).unwrap().unwrap(),
                )
            })
            .collect::<Vec<_>>()
        });
        let formats: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(formats, ["png", "jpeg", "webp"], "PNG first");
        for (format, sha1, bytes, width, height, mime) in &rows {
            let image: Vec<u8> = one(
                "SELECT avatar.avatar_get($1, 60, $2)",
                &[id.into(), format.as_str().into()],
            )
            .unwrap();
            assert_eq!(
                *sha1,
                avatar_pipeline::sha1_hex(&image),
                "{format}: the bytes' SHA-1"
            );
            assert_eq!(*bytes as usize, image.len());
            assert_eq!((*width, *height), (60, 60));
            assert_eq!(mime, &format!("image/{format}"));
        }
        let none: Option<i64> = one(
            "SELECT count(*) FROM avatar.avatar_renditions(gen_random_uuid(), 60)",
            &[],
        );
        assert_eq!(none, Some(0));
    }

    /// The version this library installs is the newest schema it knows,
    /// so a new version cannot be released without teaching it the schema.
    #[pg_test]
    fn the_installed_version_is_the_newest_schema() {
        use crate::store::Schema;
        let installed = one::<String>(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_avatar'",
            &[],
        )
        .unwrap();
        assert_eq!(installed, env!("CARGO_PKG_VERSION"));
        assert_eq!(Schema::of_version(&installed), Some(Schema::NEWEST));
    }

    /// pgrx names SQLSTATEs by constant; the contract by text. Each of the
    /// contract's classes is raised as the SQLSTATE it says.
    #[pg_test]
    fn each_class_raises_its_sqlstate() {
        for class in avatar_contract::Class::ALL {
            let packed = crate::error::sqlstate(class) as isize;
            let text: String = (0..5)
                .map(|i| (((packed >> (6 * i)) & 0x3F) as u8 + b'0') as char)
                .collect();
            assert_eq!(text, class.sqlstate(), "{class:?}");
        }
    }

    #[pg_test(error = "pg_avatar: \"gif\" is not a format pg_avatar serves")]
    fn an_unknown_format_is_rejected() {
        let id = set("users,1", &png(64, 64));
        one::<Vec<u8>>("SELECT avatar.avatar_get($1, 64, 'gif')", &[id.into()]);
    }

    #[pg_test]
    fn the_avatar_or_a_placeholder_for_a_name() {
        let initial = |name: Option<&str>| -> Vec<u8> {
            one(
                "SELECT avatar.avatar_get_or_default('users,9', 50, 'initial', $1)",
                &[name.into()],
            )
            .expect("a placeholder")
        };
        let ada = initial(Some("Ada Lovelace"));
        assert_eq!(dimensions(&ada), (50, 50));
        let by_default: Option<Vec<u8>> = one(
            "SELECT avatar.avatar_default('initial', 'Ada Lovelace', 50)",
            &[],
        );
        assert_eq!(by_default.as_ref(), Some(&ada), "seeded by the name");
        assert_ne!(initial(None), ada, "seeded by the resource without a name");
        let id = set("users,9", &png(64, 64));
        assert_eq!(
            Some(initial(Some("Ada Lovelace"))),
            get(id, 50),
            "the avatar wins"
        );
    }

    #[pg_test]
    fn unknown_id_is_null() {
        assert_eq!(get(pgrx::Uuid::from_bytes([7; 16]), 64), None);
    }

    #[pg_test]
    fn info_reports_xmpp_metadata() {
        let id = set("users,9", &png(500, 300));
        get(id, 40);
        let row = Spi::connect(|c| {
            let row = c
                .select("SELECT * FROM avatar.avatar_info($1)", None, &[id.into()])?
                .first();
            Ok::<_, pgrx::spi::SpiError>((
                row.get_by_name::<String, _>("resource")?.unwrap(),
                row.get_by_name::<String, _>("sha1")?.unwrap(),
                row.get_by_name::<i32, _>("bytes")?.unwrap(),
                row.get_by_name::<i32, _>("width")?.unwrap(),
                row.get_by_name::<i32, _>("height")?.unwrap(),
                row.get_by_name::<String, _>("mime_type")?.unwrap(),
                row.get_by_name::<i32, _>("cached_sizes")?.unwrap(),
            ))
        })
        .unwrap();
        let master: Vec<u8> = one(
            "SELECT image FROM avatar.avatar WHERE id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(
            row,
            (
                "users,9".into(),
                avatar_pipeline::sha1_hex(&master),
                master.len() as i32,
                300,
                300,
                "image/jpeg".into(),
                1
            )
        );
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM avatar.avatar_info(gen_random_uuid())",
                &[]
            ),
            Some(0)
        );
    }

    #[pg_test]
    fn lookups_and_delete() {
        let id = set("users,5", &png(64, 64));
        assert_eq!(
            one::<pgrx::Uuid>("SELECT avatar.avatar_id('users,5')", &[]),
            Some(id)
        );
        assert_eq!(
            one::<pgrx::Uuid>("SELECT avatar.avatar_id('users,6')", &[]),
            None
        );
        get(id, 32);
        assert_eq!(
            one::<bool>("SELECT avatar.avatar_delete('users,5')", &[]),
            Some(true)
        );
        assert_eq!(
            one::<bool>("SELECT avatar.avatar_delete('users,5')", &[]),
            Some(false)
        );
        assert_eq!(cached(id), 0, "the cache goes with the avatar");
        assert_eq!(get(id, 32), None);
    }

    #[pg_test]
    fn settings_shape_the_master() {
        let upload = png(400, 400);
        let master_of = |resource: &str| -> (i32, i32) {
            let id = set(resource, &upload);
            let width = one(
                "SELECT width FROM avatar.avatar WHERE id = $1",
                &[id.into()],
            )
            .unwrap();
            let bytes = one(
                "SELECT bytes FROM avatar.avatar WHERE id = $1",
                &[id.into()],
            )
            .unwrap();
            (width, bytes)
        };
        Spi::run("SET pg_avatar.jpeg_quality = 20").unwrap();
        let (_, low) = master_of("q,low");
        Spi::run("SET pg_avatar.jpeg_quality = 95").unwrap();
        let (_, high) = master_of("q,high");
        assert!(
            low * 2 < high,
            "quality 20 gave {low} bytes, 95 gave {high}"
        );

        Spi::run("SET pg_avatar.max_size = 128").unwrap();
        assert_eq!(master_of("small").0, 128);
    }

    #[pg_test(error = "pg_avatar: avatar size 0 is out of range 1..2048")]
    fn size_zero_is_rejected() {
        let id = set("users,1", &png(64, 64));
        get(id, 0);
    }

    #[pg_test(error = "pg_avatar: avatar size 2049 is out of range 1..2048")]
    fn avatar_size_has_the_same_rule() {
        one::<i32>("SELECT avatar.avatar_size(2049)", &[]);
    }

    #[pg_test(error = "pg_avatar: image must not be NULL")]
    fn null_image_is_rejected() {
        one::<pgrx::Uuid>("SELECT avatar.avatar_set('users,1', NULL)", &[]);
    }

    #[pg_test(error = "pg_avatar: image format not recognised")]
    fn random_bytes_are_rejected() {
        set("users,1", b"\x01\x02\x03 not an image at all");
    }

    #[pg_test(error = "pg_avatar: resource must be 1 to 1024 bytes of non-blank text")]
    fn blank_resource_is_rejected() {
        set("  ", &png(8, 8));
    }

    #[pg_test(
        error = "pg_avatar: image is 100000x100000 = 10000000000 pixels, over the limit of 50000000 pixels"
    )]
    fn bombs_are_stopped_at_the_header() {
        set("users,1", &samples::png_claiming(100_000, 100_000));
    }

    #[pg_test(error = "permission denied to set parameter \"pg_avatar.max_input_pixels\"")]
    fn limits_are_for_superusers() {
        Spi::run("CREATE ROLE avatar_test_user").unwrap();
        Spi::run("SET ROLE avatar_test_user").unwrap();
        Spi::run("SET pg_avatar.max_input_pixels = 2000000000").unwrap();
    }

    /// Volatility, strictness, parallel safety, SECURITY DEFINER and a pinned
    /// search_path (all but the two pure functions), as the catalog records them:
    /// (signature, provolatile, proisstrict, proparallel, prosecdef).
    #[pg_test]
    fn functions_are_marked_honestly() {
        let expected = [
            ("avatar.avatar_set(text,bytea)", "v", false, "u", true),
            (
                "avatar.avatar_set(text,bytea,integer,integer,integer)",
                "v",
                false,
                "u",
                true,
            ),
            (
                "avatar.avatar_rendition_exact(uuid,integer,text)",
                "v",
                true,
                "u",
                true,
            ),
            (
                "avatar.avatar_default_exact(text,text,integer)",
                "i",
                true,
                "s",
                false,
            ),
            ("avatar.avatar_set_rating(text,text)", "v", false, "u", true),
            (
                "avatar.avatar_set_description(text,text)",
                "v",
                false,
                "u",
                true,
            ),
            ("avatar.avatar_description(uuid)", "s", true, "s", true),
            ("avatar.avatar_by_digest(text,text)", "s", true, "s", true),
            ("avatar.avatar_get(uuid,integer)", "v", true, "u", true),
            ("avatar.avatar_get(uuid,integer,text)", "v", true, "u", true),
            (
                "avatar.avatar_renditions(uuid,integer)",
                "v",
                true,
                "u",
                true,
            ),
            ("avatar.avatar_size(integer)", "i", true, "s", false),
            ("avatar.avatar_id(text)", "s", true, "s", true),
            ("avatar.avatar_sha1(uuid)", "s", true, "s", true),
            ("avatar.avatar_delete(text)", "v", true, "u", true),
            ("avatar.avatar_info(uuid)", "s", true, "s", true),
            ("avatar.avatar_notify_change()", "v", false, "u", false),
            (
                "avatar.avatar_notify_address(text,text)",
                "v",
                false,
                "u",
                false,
            ),
            ("avatar.avatar_email_changed()", "v", false, "u", false),
            ("avatar.avatar_deleted()", "v", false, "u", false),
            ("avatar.avatar_owner_deleted()", "v", false, "u", true),
            ("avatar.avatar_owner_truncated()", "v", false, "u", true),
            ("avatar.avatar_attachment_dropped()", "v", false, "u", true),
            ("avatar.attach(regclass,name[])", "v", true, "u", false),
            ("avatar.detach(regclass)", "v", true, "u", false),
            (
                "avatar.avatar_rendition(uuid,integer,text)",
                "v",
                true,
                "u",
                true,
            ),
            ("avatar.avatar_resource_check(text)", "i", true, "s", false),
            ("avatar.avatar_resource(text,text[])", "i", true, "s", false),
            (
                "avatar.avatar_is_served(avatar.avatar)",
                "i",
                false,
                "s",
                false,
            ),
            (
                "avatar.avatar_default(text,text,integer)",
                "i",
                true,
                "s",
                false,
            ),
            ("avatar.avatar_set_email(text,text)", "v", true, "u", true),
            ("avatar.avatar_unset_email(text,text)", "v", true, "u", true),
            ("avatar.avatar_by_digest(text)", "s", true, "s", true),
            (
                "avatar.avatar_fallback_due(text,interval)",
                "s",
                true,
                "s",
                true,
            ),
            (
                "avatar.avatar_set_fallback(text,bytea)",
                "v",
                true,
                "u",
                true,
            ),
            ("avatar.avatar_drop_fallback(text)", "v", true, "u", true),
            ("avatar.avatar_disable(text)", "v", true, "u", true),
            ("avatar.avatar_enable(text)", "v", true, "u", true),
            ("avatar.avatar_wipe(text)", "v", true, "u", true),
            (
                "avatar.avatar_get_or_default(text,integer,text,text)",
                "v",
                false,
                "u",
                true,
            ),
        ];
        let functions = one::<i64>(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'avatar'::regnamespace",
            &[],
        );
        assert_eq!(
            functions,
            Some(expected.len() as i64),
            "every function is listed"
        );
        for (signature, volatile, strict, parallel, definer) in expected {
            let row = Spi::connect(|c| {
                let row = c
                    .select(
                        "SELECT provolatile::text, proisstrict, proparallel::text, prosecdef,
                                coalesce(array_to_string(proconfig, ';'), '')
                           FROM pg_proc WHERE oid = $1::regprocedure",
                        None,
                        &[signature.into()],
                    )?
                    .first();
                Ok::<_, pgrx::spi::SpiError>((
                    row.get::<String>(1)?.unwrap(),
                    row.get::<bool>(2)?.unwrap(),
                    row.get::<String>(3)?.unwrap(),
                    row.get::<bool>(4)?.unwrap(),
                    row.get::<String>(5)?.unwrap(),
                ))
            })
            .unwrap();
            assert_eq!(
                (row.0.as_str(), row.1, row.2.as_str(), row.3),
                (volatile, strict, parallel, definer),
                "{signature}"
            );
            // The two pure functions touch no table; every other one pins it.
            let pure = [
                "avatar.avatar_size",
                "avatar.avatar_default",
                "avatar.avatar_resource_check",
                "avatar.avatar_resource(",
                // Inlined into the queries that call it, which a SET forbids.
                "avatar.avatar_is_served",
            ];
            if !pure.iter().any(|p| signature.starts_with(p)) {
                assert_eq!(
                    row.4, "search_path=pg_catalog, pg_temp",
                    "{signature} pins search_path"
                );
            }
        }
    }

    /// Public ids come straight from the OS's CSPRNG: 100,000 of them are
    /// distinct, carry the version 4 bits, and every random bit is a fair
    /// coin (a counter or a clock would leave most bits fixed).
    #[pg_test]
    fn ids_are_random_and_distinct() {
        const N: usize = 100_000;
        let ids: Vec<u128> = (0..N)
            .map(|_| u128::from_be_bytes(*crate::store::random_id().as_bytes()))
            .collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), N);
        let version_bits: u128 = 0xf << 76 | 0b11 << 62;
        for id in &ids {
            assert_eq!(
                id & version_bits,
                0x4 << 76 | 0b10 << 62,
                "RFC 4122 version 4"
            );
        }
        for bit in (0..128).filter(|b| version_bits & (1 << b) == 0) {
            let ones = ids.iter().filter(|id| *id & (1 << bit) != 0).count();
            assert!(
                (N * 48 / 100..=N * 52 / 100).contains(&ones),
                "bit {bit}: {ones} of {N}"
            );
        }
        let sequential = ids
            .windows(2)
            .filter(|w| w[1].abs_diff(w[0]) < 1 << 64)
            .count();
        assert!(sequential < 5, "{sequential} neighbours were close");
    }

    #[pg_test]
    fn every_table_is_dumped() {
        let dumped: Vec<String> = Spi::connect(|c| {
            c.select(
                "SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'pg_avatar' ORDER BY 1",
                None,
                &[],
            )?
            .map(|row| row.get::<String>(1).map(Option::unwrap))
            .collect::<Result<_, _>>()
        })
        .unwrap();
        assert_eq!(
            dumped,
            [
                "avatar.avatar",
                "avatar.avatar_attachment",
                "avatar.avatar_cache",
                "avatar.avatar_email"
            ]
        );
    }
}
