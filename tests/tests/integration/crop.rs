//! The user's own crop in `avatar_set`: a square in pixels of the upright
//! image, checked against it before anything is written.

use avatar_pipeline::samples;
use image::metadata::Orientation;
use image::{Rgb, RgbImage};
use pg_avatar_tests::*;

const RED: [u8; 3] = [220, 30, 30];
const GREEN: [u8; 3] = [30, 200, 30];
const BLUE: [u8; 3] = [30, 30, 220];
const YELLOW: [u8; 3] = [230, 230, 30];

/// 60 wide, 40 high upright: four quadrants of 30x20.
fn upright() -> RgbImage {
    RgbImage::from_fn(60, 40, |x, y| {
        Rgb(match (x < 30, y < 20) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => YELLOW,
        })
    })
}

fn set_cropped(
    c: &mut Client,
    resource: &str,
    image: &[u8],
    crop: (Option<i32>, Option<i32>, Option<i32>),
) -> Result<Uuid, Error> {
    c.query_one(
        "SELECT avatar.avatar_set($1, $2, crop_x => $3, crop_y => $4, crop_size => $5)",
        &[&resource, &image, &crop.0, &crop.1, &crop.2],
    )
    .map(|r| r.get(0))
}

/// The master's side and the colour at its centre.
fn master(c: &mut Client, id: Uuid) -> (i32, [u8; 3]) {
    let row = c
        .query_one(
            "SELECT image, width FROM avatar.avatar WHERE id = $1",
            &[&id],
        )
        .unwrap();
    let image = image::load_from_memory(row.get::<_, &[u8]>(0))
        .unwrap()
        .to_rgb8();
    let centre = image.get_pixel(image.width() / 2, image.height() / 2).0;
    (row.get(1), centre)
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) < 40)
}

#[test]
fn a_crop_picks_the_upright_square_for_every_exif_orientation() {
    let db = TestDb::new("crop");
    let mut c = db.connect();
    for exif in 1u16..=8 {
        let orientation = Orientation::from_exif(exif as u8).unwrap();
        let upload = samples::jpeg_with_exif_orientation(
            &samples::stored_for(&upright(), orientation),
            exif,
        );
        for (x, y, want) in [(2, 2, RED), (32, 2, GREEN), (2, 22, BLUE), (32, 22, YELLOW)] {
            let id = set_cropped(&mut c, "users,1", &upload, (Some(x), Some(y), Some(16))).unwrap();
            let (side, colour) = master(&mut c, id);
            assert_eq!(side, 16, "orientation {exif}: the crop's side");
            assert!(
                near(colour, want),
                "orientation {exif} at {x},{y}: {colour:?}, not {want:?}"
            );
        }
        // No crop, or three NULLs: the centre square, as before.
        for crop in [None, Some((None, None, None))] {
            let id = match crop {
                None => set(&mut c, "users,1", &upload).unwrap(),
                Some(crop) => set_cropped(&mut c, "users,1", &upload, crop).unwrap(),
            };
            assert_eq!(
                master(&mut c, id).0,
                40,
                "orientation {exif}: the centre square"
            );
        }
    }
}

#[test]
fn a_bad_crop_is_22023_with_the_upright_size_and_writes_nothing() {
    let db = TestDb::new("badcrop");
    let mut c = db.connect();
    // Stored 40 wide and 60 high, shown 60 wide and 40 high.
    let upload = samples::jpeg_with_exif_orientation(
        &samples::stored_for(&upright(), Orientation::Rotate90),
        6,
    );
    let id = set(&mut c, "users,1", &png(50, 50)).unwrap();
    let before = master_sha1(&mut c, id);
    let outside = [
        (0, 0, 41),
        (21, 0, 40),
        (0, 1, 40),
        (60, 0, 1),
        (0, 40, 1),
        (0, 0, 0),
        (i32::MAX, 0, 2),
        (0, 0, i32::MAX),
    ];
    for (x, y, size) in outside {
        for resource in ["users,1", "users,2"] {
            let error =
                set_cropped(&mut c, resource, &upload, (Some(x), Some(y), Some(size))).unwrap_err();
            let db_error = error.as_db_error().unwrap();
            assert_eq!(db_error.code().code(), "22023", "({x}, {y}) + {size}");
            assert!(
                db_error.hint().is_some_and(|h| h.contains("60x40")),
                "({x}, {y}) + {size}: the hint gives the upright size: {:?}",
                db_error.hint()
            );
        }
    }
    for (what, crop) in [
        ("only crop_x", (Some(1), None, None)),
        ("no crop_size", (Some(1), Some(1), None)),
        ("negative x", (Some(-1), Some(0), Some(10))),
        ("negative size", (Some(0), Some(0), Some(-10))),
    ] {
        assert_eq!(
            sqlstate(set_cropped(&mut c, "users,2", &upload, crop)),
            "22023",
            "{what}"
        );
    }
    assert_eq!(master_sha1(&mut c, id), before, "the avatar is unchanged");
    assert_eq!(
        avatar_of(&mut c, "users,2"),
        None,
        "and no new one was made"
    );
    // The edge itself is inside.
    let id = set_cropped(&mut c, "users,2", &upload, (Some(20), Some(0), Some(40))).unwrap();
    assert_eq!(master(&mut c, id).0, 40);
}
