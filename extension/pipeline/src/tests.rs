use image::metadata::Orientation;
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};

use crate::samples::{self, encode};
use crate::{Class, Error, Limits, Pipeline};

fn decode(jpeg: &[u8]) -> DynamicImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).expect("output is a JPEG")
}

fn close(a: Rgb<u8>, b: [u8; 3]) -> bool {
    a.0.iter().zip(b).all(|(&x, y)| x.abs_diff(y) < 40)
}

const RED: [u8; 3] = [220, 30, 30];
const GREEN: [u8; 3] = [30, 200, 30];
const BLUE: [u8; 3] = [30, 30, 220];
const YELLOW: [u8; 3] = [230, 230, 30];

/// 48x32 upright picture: four coloured quadrants in the centre 32x32, and
/// black 8 px bands left and right that the crop must remove.
fn upright_quadrants() -> RgbImage {
    RgbImage::from_fn(48, 32, |x, y| {
        if !(8..40).contains(&x) {
            return Rgb([0, 0, 0]);
        }
        Rgb(match (x < 24, y < 16) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => YELLOW,
        })
    })
}

fn assert_quadrants(out: &DynamicImage, label: &str) {
    let out = out.to_rgb8();
    let s = out.width();
    assert_eq!((out.width(), out.height()), (s, s), "{label}: square");
    let q = s / 4;
    for (x, y, want) in [
        (q, q, RED),
        (3 * q, q, GREEN),
        (q, 3 * q, BLUE),
        (3 * q, 3 * q, YELLOW),
    ] {
        assert!(
            close(*out.get_pixel(x, y), want),
            "{label}: at {x},{y} got {:?}, want {want:?}",
            out.get_pixel(x, y)
        );
    }
    // The corners come from the coloured centre, not the black bands.
    for (x, y) in [(0, 0), (s - 1, 0), (0, s - 1), (s - 1, s - 1)] {
        assert!(
            out.get_pixel(x, y).0.iter().any(|&c| c > 150),
            "{label}: corner {x},{y} is from the cropped band"
        );
    }
}

#[test]
fn every_exif_orientation_comes_out_upright_and_centred() {
    let upright = upright_quadrants();
    for (exif, orientation) in (1u16..=8).map(|v| (v, Orientation::from_exif(v as u8).unwrap())) {
        let stored = samples::stored_for(&upright, orientation);
        let upload = samples::jpeg_with_exif_orientation(&stored, exif);
        let avatar = Pipeline::default().normalise(&upload, 2048).unwrap();
        assert_eq!(avatar.side, 32, "orientation {exif}");
        assert_quadrants(&decode(&avatar.jpeg), &format!("orientation {exif}"));
    }
}

fn assert_all(out: &DynamicImage, want: [u8; 3], label: &str) {
    let out = out.to_rgb8();
    for (x, y) in [
        (0, 0),
        (out.width() / 2, out.height() / 2),
        (out.width() - 1, out.height() - 1),
    ] {
        assert!(
            close(*out.get_pixel(x, y), want),
            "{label}: at {x},{y} got {:?}, want {want:?}",
            out.get_pixel(x, y)
        );
    }
}

/// The user's square is chosen on the picture as shown, upright: each
/// quadrant of [`upright_quadrants`] by its upright coordinates, whatever
/// the EXIF orientation turned the stored pixels to.
#[test]
fn a_chosen_crop_is_in_upright_pixels_for_every_exif_orientation() {
    let upright = upright_quadrants();
    let crop = |x, y, size| Some(crate::Crop { x, y, size });
    for (exif, orientation) in (1u16..=8).map(|v| (v, Orientation::from_exif(v as u8).unwrap())) {
        let stored = samples::stored_for(&upright, orientation);
        let upload = samples::jpeg_with_exif_orientation(&stored, exif);
        for (x, y, want) in [(8, 0, RED), (24, 0, GREEN), (8, 16, BLUE), (24, 16, YELLOW)] {
            let avatar = Pipeline::default()
                .normalise_cropped(&upload, 2048, crop(x + 2, y + 2, 12))
                .unwrap();
            assert_eq!(avatar.side, 12, "orientation {exif}: the crop's own side");
            assert_all(
                &decode(&avatar.jpeg),
                want,
                &format!("orientation {exif} at {x},{y}"),
            );
        }
        let whole = Pipeline::default()
            .normalise_cropped(&upload, 2048, crop(8, 0, 32))
            .unwrap();
        assert_quadrants(
            &decode(&whole.jpeg),
            &format!("orientation {exif}, the centre chosen"),
        );
        let small = Pipeline::default()
            .normalise_cropped(&upload, 6, crop(24, 16, 16))
            .unwrap();
        assert_eq!(small.side, 6, "orientation {exif}: at most the maximum");
        assert_all(
            &decode(&small.jpeg),
            YELLOW,
            &format!("orientation {exif}, shrunk"),
        );
    }
}

#[test]
fn a_crop_outside_the_upright_image_is_refused_with_its_size() {
    // Stored 32 wide and 48 high, shown 48 wide and 32 high.
    let stored = samples::stored_for(&upright_quadrants(), Orientation::Rotate90);
    let upload = samples::jpeg_with_exif_orientation(&stored, 6);
    for (x, y, size) in [
        (0, 0, 0),
        (0, 0, 33),
        (17, 0, 32),
        (0, 1, 32),
        (48, 0, 1),
        (0, 32, 1),
        (u32::MAX, 0, 2),
    ] {
        let chosen = crate::Crop { x, y, size };
        let refused = Pipeline::default()
            .normalise_cropped(&upload, 2048, Some(chosen))
            .unwrap_err();
        assert_eq!(refused.class(), Class::InvalidParameter, "{chosen:?}");
        assert!(
            refused.hint().is_some_and(|h| h.contains("48x32")),
            "{chosen:?}: the hint gives the upright size: {:?}",
            refused.hint()
        );
    }
    let edge = crate::Crop {
        x: 16,
        y: 0,
        size: 32,
    };
    assert!(Pipeline::default()
        .normalise_cropped(&upload, 2048, Some(edge))
        .is_ok());
}

/// A crop of a large photo still takes the cheap scaled decode, as far as
/// the crop (not the whole picture) allows, and lands on the right pixels.
#[test]
fn a_chosen_crop_of_a_large_jpeg_shrinks_on_load_by_its_own_side() {
    let upright = image::imageops::resize(
        &upright_quadrants(),
        4800,
        3200,
        image::imageops::FilterType::Nearest,
    );
    let stored = samples::stored_for(&upright, Orientation::Rotate270);
    let upload = samples::jpeg_with_exif_orientation(&stored, 8);
    // Green is upright x 2400..4000, y 0..1600.
    let green = crate::Crop {
        x: 2600,
        y: 100,
        size: 1200,
    };
    let avatar = Pipeline::default()
        .normalise_cropped(&upload, 64, Some(green))
        .unwrap();
    assert_eq!(
        avatar.decoded,
        (400, 600),
        "1200 px is 8x of twice 64: 1/8 scale"
    );
    assert_all(&decode(&avatar.jpeg), GREEN, "shrunk 1/8");
    let small = crate::Crop {
        x: 3000,
        y: 2000,
        size: 300,
    };
    let avatar = Pipeline::default()
        .normalise_cropped(&upload, 64, Some(small))
        .unwrap();
    assert_eq!(
        avatar.decoded,
        (3200, 4800),
        "300 px cannot lose a factor of 4"
    );
    assert_all(&decode(&avatar.jpeg), YELLOW, "a small crop, decoded whole");
}

/// The review's case: a square flush with the right or bottom edge of a
/// JPEG shrunk on load, whose scale is not exact, landed a rounding error
/// past the decoded pixels and failed as an internal error.
#[test]
fn a_crop_flush_with_the_edge_of_a_shrunk_jpeg_is_inside() {
    for (width, height, max) in [(999, 777, 64), (1001, 1003, 100), (4145, 1097, 128)] {
        let upload = encode(
            &DynamicImage::ImageRgb8(samples::scene(width, height)),
            ImageFormat::Jpeg,
        );
        let short = width.min(height);
        for size in [short, short - 1, short / 2 + 1, 512.min(short)] {
            for (x, y) in [
                (width - size, height - size),
                (width - size, 0),
                (0, height - size),
            ] {
                let chosen = crate::Crop { x, y, size };
                let avatar = Pipeline::default()
                    .normalise_cropped(&upload, max, Some(chosen))
                    .unwrap_or_else(|e| panic!("{width}x{height} {chosen:?}: {e}"));
                assert_eq!(avatar.side, max.min(size), "{width}x{height} {chosen:?}");
            }
        }
    }
}

#[test]
fn crop_and_orientation_also_hold_when_enlarged_on_render() {
    let stored = samples::stored_for(&upright_quadrants(), Orientation::Rotate90);
    let master = Pipeline::default()
        .normalise(&samples::jpeg_with_exif_orientation(&stored, 6), 2048)
        .unwrap();
    let big = Pipeline::default().render(&master.jpeg, 200).unwrap();
    assert_quadrants(&decode(&big.jpeg), "rendered at 200");
}

#[test]
fn alpha_is_composited_onto_white() {
    let png = encode(
        &DynamicImage::ImageRgba8(samples::disc_with_alpha(64, [0, 0, 200])),
        ImageFormat::Png,
    );
    let out = decode(&Pipeline::default().normalise(&png, 2048).unwrap().jpeg).to_rgb8();
    assert!(
        close(*out.get_pixel(2, 2), [255, 255, 255]),
        "corner {:?}",
        out.get_pixel(2, 2)
    );
    assert!(
        close(*out.get_pixel(32, 32), [0, 0, 200]),
        "centre {:?}",
        out.get_pixel(32, 32)
    );
}

#[test]
fn normalise_shrinks_but_never_enlarges() {
    let small = encode(
        &DynamicImage::ImageRgb8(samples::scene(100, 60)),
        ImageFormat::Png,
    );
    assert_eq!(
        Pipeline::default().normalise(&small, 2048).unwrap().side,
        60
    );
    assert_eq!(Pipeline::default().normalise(&small, 16).unwrap().side, 16);

    let large = encode(
        &DynamicImage::ImageRgb8(samples::scene(2600, 2200)),
        ImageFormat::Png,
    );
    let avatar = Pipeline::default().normalise(&large, 2048).unwrap();
    assert_eq!(avatar.side, 2048);
    assert_eq!(decode(&avatar.jpeg).dimensions(), (2048, 2048));
}

#[test]
fn render_gives_exactly_the_size_asked() {
    let master = Pipeline::default()
        .normalise(
            &encode(
                &DynamicImage::ImageRgb8(samples::scene(90, 70)),
                ImageFormat::Png,
            ),
            2048,
        )
        .unwrap();
    assert_eq!(master.side, 70);
    for side in [1, 16, 32, 70, 128, 300] {
        let out = Pipeline::default().render(&master.jpeg, side).unwrap();
        assert_eq!(out.side, side);
        assert_eq!(decode(&out.jpeg).dimensions(), (side, side), "side {side}");
    }
    assert_eq!(
        Pipeline::default().render(&master.jpeg, 0).unwrap_err(),
        Error::SizeOutOfRange(0)
    );
    assert_eq!(
        Pipeline::default().render(&master.jpeg, 2049).unwrap_err(),
        Error::SizeOutOfRange(2049)
    );
}

/// Behaviour, not time: a large downscale of a JPEG must take the cheap
/// scaled decode, and must still look like the picture.
#[test]
fn large_jpeg_downscales_shrink_on_load() {
    let master = Pipeline::default()
        .normalise(
            &encode(
                &DynamicImage::ImageRgb8(upright_quadrants()),
                ImageFormat::Png,
            ),
            2048,
        )
        .unwrap();
    let big = Pipeline::default().render(&master.jpeg, 2048).unwrap();
    assert_eq!(big.decoded, (32, 32), "enlarging decodes everything");
    for (side, decoded) in [(64, 256), (128, 256), (256, 512), (512, 2048), (1024, 2048)] {
        let out = Pipeline::default().render(&big.jpeg, side).unwrap();
        assert_eq!(out.decoded, (decoded, decoded), "render 2048 -> {side}");
        assert_quadrants(&decode(&out.jpeg), &format!("shrunk to {side}"));
    }
    // Grey JPEGs take the same path; PNGs never do.
    let grey = encode(
        &DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(samples::scene(1600, 1600)).to_luma8()),
        ImageFormat::Jpeg,
    );
    assert_eq!(
        Pipeline::default().render(&grey, 100).unwrap().decoded,
        (200, 200)
    );
    let png = encode(
        &DynamicImage::ImageRgb8(samples::scene(1600, 1600)),
        ImageFormat::Png,
    );
    assert_eq!(
        Pipeline::default().render(&png, 100).unwrap().decoded,
        (1600, 1600)
    );
}

#[test]
fn every_accepted_format_normalises() {
    let scene = DynamicImage::ImageRgb8(samples::scene(80, 50));
    let rgba = DynamicImage::ImageRgba8(samples::disc_with_alpha(40, [200, 0, 0]));
    for (format, image) in [
        (ImageFormat::Jpeg, &scene),
        (ImageFormat::Png, &scene),
        (ImageFormat::Png, &rgba),
        (ImageFormat::WebP, &scene),
        (ImageFormat::WebP, &rgba),
        (ImageFormat::Gif, &rgba),
        (ImageFormat::Bmp, &scene),
    ] {
        let avatar = Pipeline::default()
            .normalise(&encode(image, format), 2048)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(avatar.side, image.width().min(image.height()), "{format:?}");
    }
}

#[test]
fn quality_setting_changes_the_bytes() {
    let upload = encode(
        &DynamicImage::ImageRgb8(samples::scene(400, 400)),
        ImageFormat::Png,
    );
    let at = |quality| {
        Pipeline {
            quality,
            ..Pipeline::default()
        }
        .normalise(&upload, 2048)
        .unwrap()
        .jpeg
        .len()
    };
    assert!(
        at(30) < at(85) && at(85) < at(100),
        "{} {} {}",
        at(30),
        at(85),
        at(100)
    );
}

#[test]
fn metadata_is_stripped() {
    let upload = samples::jpeg_with_exif_orientation(&samples::scene(64, 64), 1);
    assert!(upload.windows(4).any(|w| w == b"Exif"));
    let out = Pipeline::default().normalise(&upload, 2048).unwrap().jpeg;
    assert!(!out.windows(4).any(|w| w == b"Exif"));
}

#[test]
fn first_gif_frame_is_used() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        for colour in [[220, 30, 30, 255], [30, 30, 220, 255]] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(20, 20, image::Rgba(colour)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            encoder.encode_frame(frame).unwrap();
        }
    }
    let out = decode(&Pipeline::default().normalise(&gif, 2048).unwrap().jpeg).to_rgb8();
    assert!(
        close(*out.get_pixel(10, 10), RED),
        "{:?}",
        out.get_pixel(10, 10)
    );
}

#[test]
fn bad_input_is_classified() {
    let png = encode(
        &DynamicImage::ImageRgb8(samples::scene(64, 64)),
        ImageFormat::Png,
    );
    let p = Pipeline::default();
    let class = |input: &[u8]| p.normalise(input, 2048).unwrap_err().class();

    assert_eq!(p.normalise(b"", 2048).unwrap_err(), Error::Empty);
    assert_eq!(
        p.normalise(b"definitely not an image", 2048).unwrap_err(),
        Error::UnknownFormat
    );
    assert_eq!(
        class(&png[..png.len() / 2]),
        Class::InvalidBinary,
        "truncated PNG"
    );
    let mut corrupt = png.clone();
    corrupt[60..90].fill(0xAA);
    assert_eq!(class(&corrupt), Class::InvalidBinary, "corrupt PNG");
    // A TIFF signature: recognised, but not a format browsers show.
    assert_eq!(
        p.normalise(b"II*\0\x08\0\0\0\0\0", 2048).unwrap_err(),
        Error::UnsupportedFormat("TIFF".into())
    );
    assert_eq!(
        class(&samples::png_claiming(0, 10)),
        Class::InvalidBinary,
        "zero width is invalid PNG"
    );
}

/// A progressive JPEG with every component at full resolution costs 9
/// bytes a pixel decoded (11 in CMYK). Over a quarter of the pixel limit it
/// is refused; below, it decodes whole. Past a hundred scans, any JPEG is
/// refused before decoding.
#[test]
fn costly_jpegs_are_refused() {
    let within = |max_input_pixels| Pipeline {
        limits: Limits {
            max_input_pixels,
            ..Limits::default()
        },
        ..Pipeline::default()
    };
    let pixels = 600 * 400;
    for cmyk in [false, true] {
        let jpeg = samples::progressive_full_chroma_jpeg(600, 400, cmyk);
        assert_eq!(
            within(4 * pixels).normalise(&jpeg, 2048).unwrap().decoded,
            (600, 400)
        );
        let refused = within(4 * pixels - 4).normalise(&jpeg, 2048).unwrap_err();
        assert!(matches!(refused, Error::TooCostly { .. }), "{refused:?}");
        assert_eq!(refused.class(), Class::LimitExceeded);
    }
    // Chroma at half resolution (4:2:0, what cameras write) is 6 bytes a
    // pixel, and decodes at any size within the limit.
    let camera = samples::progressive_jpeg_with_scans(&samples::photo(600, 400), 0);
    assert_eq!(
        within(pixels).normalise(&camera, 2048).unwrap().decoded,
        (600, 400)
    );

    let scans = |extra| samples::progressive_jpeg_with_scans(&samples::photo(64, 64), extra);
    let ordinary = crate::complete::jpeg_frame(&scans(0)).unwrap().scans;
    Pipeline::default()
        .normalise(&scans(crate::complete::MAX_JPEG_SCANS - ordinary), 2048)
        .expect("a hundred scans");
    assert_eq!(
        Pipeline::default()
            .normalise(&scans(crate::complete::MAX_JPEG_SCANS - ordinary + 1), 2048)
            .unwrap_err(),
        Error::TooManyScans {
            scans: crate::complete::MAX_JPEG_SCANS + 1,
            limit: crate::complete::MAX_JPEG_SCANS
        }
    );
}

#[test]
fn limits_are_checked_before_decoding() {
    let bomb = samples::png_claiming(100_000, 100_000);
    assert!(bomb.len() < 200);
    assert_eq!(
        Pipeline::default().normalise(&bomb, 2048).unwrap_err(),
        Error::TooManyPixels {
            width: 100_000,
            height: 100_000,
            limit: 50_000_000
        }
    );
    let png = encode(
        &DynamicImage::ImageRgb8(samples::scene(64, 64)),
        ImageFormat::Png,
    );
    let tight = Pipeline {
        limits: Limits {
            max_input_bytes: 100,
            ..Limits::default()
        },
        ..Pipeline::default()
    };
    assert_eq!(
        tight.normalise(&png, 2048).unwrap_err(),
        Error::TooManyBytes {
            bytes: png.len(),
            limit: 100
        }
    );
    let few_pixels = Pipeline {
        limits: Limits {
            max_input_pixels: 4095,
            ..Limits::default()
        },
        ..Pipeline::default()
    };
    assert_eq!(
        few_pixels.normalise(&png, 2048).unwrap_err().class(),
        Class::LimitExceeded
    );
}

#[test]
fn thin_images_crop_to_a_square() {
    let tall = encode(
        &DynamicImage::ImageRgb8(samples::scene(1, 20000)),
        ImageFormat::Png,
    );
    let avatar = Pipeline::default().normalise(&tall, 2048).unwrap();
    assert_eq!(avatar.side, 1);
    assert_eq!(
        Pipeline::default().render(&avatar.jpeg, 64).unwrap().side,
        64
    );
}

#[test]
fn checkpoint_runs_and_can_abort() {
    let upload = encode(
        &DynamicImage::ImageRgb8(samples::scene(64, 64)),
        ImageFormat::Png,
    );
    let calls = std::cell::Cell::new(0);
    let counting = Pipeline {
        checkpoint: &|| calls.set(calls.get() + 1),
        ..Pipeline::default()
    };
    counting.normalise(&upload, 2048).unwrap();
    assert!(calls.get() >= 3);
    let cancelling = Pipeline {
        checkpoint: &|| panic!("cancelled"),
        ..Pipeline::default()
    };
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || cancelling.normalise(&upload, 2048)
    ))
    .is_err());
}

#[test]
fn sha1_is_lower_hex() {
    assert_eq!(
        crate::sha1_hex(b"abc"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}

/// Every way jpeg-encoder samples and splits a colour JPEG decodes to its
/// pixels, as jpeg-decoder reads them: zune-jpeg striped the files it
/// writes in a scan per component (with optimised tables, or sampled
/// 4:2 or 1:4), where any component is subsampled.
#[test]
fn every_sampling_and_scan_split_decodes_to_its_pixels() {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor as F};
    let (w, h) = (96u16, 64u16);
    let photo = samples::photo(u32::from(w), u32::from(h));
    for sampling in [
        F::F_1_1,
        F::F_2_1,
        F::F_1_2,
        F::F_2_2,
        F::F_4_1,
        F::F_4_2,
        F::F_1_4,
        F::F_2_4,
    ] {
        for optimised in [false, true] {
            let mut jpeg = Vec::new();
            let mut encoder = Encoder::new(&mut jpeg, 95);
            encoder.set_sampling_factor(sampling);
            encoder.set_optimized_huffman_tables(optimised);
            encoder
                .encode(photo.as_raw(), w, h, ColorType::Rgb)
                .unwrap();
            let expected = jpeg_decoder::Decoder::new(jpeg.as_slice())
                .decode()
                .unwrap();
            let out = decode(&Pipeline::default().normalise(&jpeg, 2048).unwrap().jpeg).to_rgb8();
            // The centre square of what jpeg-decoder read.
            let (side, left) = (u32::from(h), u32::from(w - h) / 2);
            let mut diff = 0u64;
            for (x, y, p) in out.enumerate_pixels() {
                let at = 3 * ((y * u32::from(w) + x + left) as usize);
                for c in 0..3 {
                    diff += u64::from(p[c].abs_diff(expected[at + c]));
                }
            }
            let mean = diff as f64 / f64::from(3 * side * side);
            // Re-encoded, it differs by 5 to 7.5; striped, by over 120.
            assert!(
                mean < 12.0,
                "{sampling:?}, optimised {optimised}: mean difference {mean:.1}"
            );
        }
    }
}
