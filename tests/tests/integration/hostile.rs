//! A corpus of odd, broken and hostile files through avatar_set and
//! avatar_get: each gives a correct avatar or an SQLSTATE error, writes
//! nothing when it fails, and never takes the backend down (`./run.sh test`
//! also checks the server log for crashed backends).

use avatar_pipeline::samples;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{DynamicImage, Frame, ImageBuffer, ImageFormat, LumaA, Rgb, RgbImage, Rgba};
use pg_avatar_tests::*;

/// Should this input become an avatar, or be refused?
#[derive(Debug, PartialEq)]
enum Expect {
    Avatar,
    Refused,
    /// Either, but nothing else (random input).
    Either,
}

fn red(width: u32, height: u32) -> RgbImage {
    RgbImage::from_pixel(width, height, Rgb([220, 20, 30]))
}

fn jpeg_with(
    colour: jpeg_encoder::ColorType,
    pixels: &[u8],
    side: u16,
    progressive: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(progressive);
    encoder.encode(pixels, side, side, colour).unwrap();
    out
}

fn palette_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 40, 30);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(vec![220, 20, 30, 0, 0, 255]);
    encoder.set_trns(vec![255, 0]);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0; 40 * 30]).unwrap();
    writer.finish().unwrap();
    out
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        for colour in [[220, 20, 30, 255], [0, 0, 255, 255], [0, 255, 0, 255]] {
            let frame = ImageBuffer::from_pixel(30, 20, Rgba(colour));
            encoder.encode_frame(Frame::new(frame)).unwrap();
        }
    }
    out
}

/// A real JPEG whose frame header claims 65500 x 65500 pixels.
fn jpeg_bomb() -> Vec<u8> {
    let mut jpeg = samples::encode(&DynamicImage::ImageRgb8(red(16, 16)), ImageFormat::Jpeg);
    let sof = jpeg
        .windows(2)
        .position(|w| w[0] == 0xff && (w[1] == 0xc0 || w[1] == 0xc2))
        .expect("a frame header");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xdc, 0xff, 0xdc]);
    jpeg
}

/// Deterministic noise, so a failure can be reproduced.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn corpus() -> Vec<(String, Vec<u8>, Expect)> {
    use Expect::*;
    let photo = DynamicImage::ImageRgb8(samples::photo(300, 200));
    let jpeg = samples::encode(&photo, ImageFormat::Jpeg);
    let png = samples::encode(&photo, ImageFormat::Png);
    let cmyk: Vec<u8> = (0..64 * 64).flat_map(|_| [0u8, 235, 225, 35]).collect();
    let rgb_red: Vec<u8> = red(64, 64).into_raw();
    let mut files: Vec<(String, Vec<u8>, Expect)> = vec![
        (
            "JPEG cut after its header".into(),
            jpeg[..200].to_vec(),
            Refused,
        ),
        (
            "truncated PNG".into(),
            png[..png.len() / 2].to_vec(),
            Refused,
        ),
        (
            "CMYK JPEG".into(),
            jpeg_with(jpeg_encoder::ColorType::Cmyk, &cmyk, 64, false),
            Avatar,
        ),
        (
            "YCCK JPEG".into(),
            jpeg_with(jpeg_encoder::ColorType::CmykAsYcck, &cmyk, 64, false),
            Avatar,
        ),
        (
            "progressive JPEG".into(),
            jpeg_with(jpeg_encoder::ColorType::Rgb, &rgb_red, 64, true),
            Avatar,
        ),
        (
            "16-bit PNG".into(),
            samples::encode(
                &DynamicImage::ImageRgb16(ImageBuffer::from_pixel(
                    50,
                    40,
                    Rgb([56000u16, 5000, 7000]),
                )),
                ImageFormat::Png,
            ),
            Avatar,
        ),
        (
            "palette PNG with transparency".into(),
            palette_png(),
            Avatar,
        ),
        (
            "grey plus alpha PNG".into(),
            samples::encode(
                &DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(30, 30, LumaA([0u8, 128]))),
                ImageFormat::Png,
            ),
            Avatar,
        ),
        ("animated GIF".into(), animated_gif(), Avatar),
        (
            "1x1 PNG".into(),
            samples::encode(&DynamicImage::ImageRgb8(red(1, 1)), ImageFormat::Png),
            Avatar,
        ),
        (
            "1x20000 PNG".into(),
            samples::encode(&DynamicImage::ImageRgb8(red(1, 20000)), ImageFormat::Png),
            Avatar,
        ),
        (
            "PNG bomb".into(),
            samples::png_claiming(100_000, 100_000),
            Refused,
        ),
        ("JPEG bomb".into(), jpeg_bomb(), Refused),
        ("empty".into(), Vec::new(), Refused),
    ];
    // Partial data is never an avatar, whichever format and wherever the cut:
    // a third, half or two thirds in, or only the last byte missing.
    for (format, whole) in complete_files() {
        assert!(image::load_from_memory(&whole).is_ok(), "{format} is whole");
        let len = whole.len();
        for cut in [len / 3, len / 2, len * 2 / 3, len - 1] {
            files.push((
                format!("{format} cut to {cut} of {len} bytes"),
                whole[..cut].to_vec(),
                Refused,
            ));
        }
    }
    // JPEGs cut inside a scan and closed again with an end marker, which
    // every decoder pads and shows; and one behind a TEM marker with a
    // length, which one reader would skip as a segment and another read as
    // standing alone, finding the end it hides.
    for (format, whole) in complete_files() {
        if !format.contains("JPEG") {
            continue;
        }
        let len = whole.len();
        for cut in [len / 3, len * 2 / 3, len - 8] {
            let mut closed = whole[..cut].to_vec();
            closed.extend_from_slice(&[0xFF, 0xD9]);
            files.push((
                format!("{format} cut to {cut} of {len} bytes and closed again"),
                closed,
                Refused,
            ));
        }
        let mut hidden = whole[..2].to_vec();
        hidden.extend_from_slice(&[0xFF, 0x01, 0x00, 0x08, 0xFF, 0xD9, 0, 0, 0, 0]);
        hidden.extend_from_slice(&whole[2..len / 3]);
        hidden.extend_from_slice(&[0xFF, 0xD9]);
        files.push((
            format!("{format} cut, behind a TEM hiding an end"),
            hidden,
            Refused,
        ));
        // A copy of the frame header, as arithmetic-coded, that zune-jpeg
        // skips and another reader takes for the file's, and so does not
        // walk the scans behind it.
        let mut hidden = samples::behind_a_hidden_frame(&whole[..len / 2]);
        hidden.extend_from_slice(&[0xFF, 0xD9]);
        files.push((
            format!("{format} cut, behind a frame header an APP0 hides"),
            hidden,
            Refused,
        ));
    }
    // Layouts the walk must refuse for the decoders' sake: a sampling that
    // made zune-jpeg index out of its buffers (a panic, XX000), a file of
    // four million empty table segments, each one more entry in the walk's
    // record of the file, and fill bytes before a stuffed zero, which one
    // reader counts as data and another skips.
    files.push((
        "JPEG of Y 1x1, Cb 2x2 and Cr 1x1, a scan each".into(),
        samples::blank_jpeg(37, 29, &[(1, 1), (2, 2), (1, 1)], &[&[0], &[1], &[2]]),
        Refused,
    ));
    let small = samples::blank_jpeg(8, 8, &[(1, 1)], &[&[0]]);
    let mut flood = small[..2].to_vec();
    while flood.len() + small.len() + 4 <= 16 << 20 {
        flood.extend_from_slice(&[0xFF, 0xC4, 0, 2]);
    }
    flood.extend_from_slice(&small[2..]);
    files.push((
        "8x8 JPEG behind four million empty Huffman segments".into(),
        flood,
        Refused,
    ));
    let (_, baseline) = complete_files().remove(0);
    let filled = samples::with_a_fill_byte_in_a_scan(&baseline);
    files.push((
        "JPEG with a fill byte inside a scan".into(),
        filled,
        Refused,
    ));
    for orientation in 1..=8 {
        files.push((
            format!("EXIF orientation {orientation}"),
            samples::jpeg_with_exif_orientation(&red(40, 30), orientation),
            Avatar,
        ));
    }
    for (seed, len) in [(1, 1), (2, 16), (3, 1000), (4, 100_000)] {
        files.push((format!("{len} random bytes"), noise(seed, len), Either));
    }
    // Random bytes behind real magic numbers get past format sniffing.
    for (seed, magic) in [
        (5, &b"\xff\xd8\xff\xe0"[..]),
        (6, b"\x89PNG\r\n\x1a\n"),
        (7, b"GIF89a"),
        (8, b"RIFF\0\0\0\0WEBPVP8 "),
    ] {
        let mut file = magic.to_vec();
        file.extend(noise(seed, 4000));
        files.push((
            format!("noise behind {:?}", String::from_utf8_lossy(&magic[..4])),
            file,
            Either,
        ));
    }
    // Everything the fuzzer kept, and the afl++ test images.
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../extension/pipeline/fuzz/regressions");
    for entry in std::fs::read_dir(kept).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e != "md") {
            files.push((
                path.display().to_string(),
                std::fs::read(&path).unwrap(),
                Either,
            ));
        }
    }
    files
}

/// One whole file of each accepted format and variant.
fn complete_files() -> Vec<(&'static str, Vec<u8>)> {
    let photo = samples::photo(300, 200);
    let square = samples::photo(200, 200);
    let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(120, 90, |x, y| {
        let p = photo.get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], (x + y) as u8])
    }));
    let photo = DynamicImage::ImageRgb8(photo);
    vec![
        ("baseline JPEG", samples::encode(&photo, ImageFormat::Jpeg)),
        (
            "progressive JPEG",
            jpeg_with(jpeg_encoder::ColorType::Rgb, square.as_raw(), 200, true),
        ),
        ("PNG", samples::encode(&photo, ImageFormat::Png)),
        ("PNG with alpha", samples::encode(&rgba, ImageFormat::Png)),
        ("GIF", samples::encode(&photo, ImageFormat::Gif)),
        ("animated GIF", animated_gif()),
        (
            "lossy WebP",
            avatar_pipeline::encode::encode(
                avatar_pipeline::Format::Webp,
                square.as_raw(),
                200,
                80,
            )
            .unwrap(),
        ),
        ("lossless WebP", samples::encode(&rgba, ImageFormat::WebP)),
        (
            "lossy WebP with alpha",
            samples::lossy_webp_with_alpha(&rgba.to_rgba8(), 80.0),
        ),
        ("BMP", samples::encode(&photo, ImageFormat::Bmp)),
    ]
}

fn dimensions(jpeg: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).expect("a JPEG");
    (image.width(), image.height())
}

fn avatars(c: &mut Client) -> i64 {
    c.query_one("SELECT count(*) FROM avatar.avatar", &[])
        .unwrap()
        .get(0)
}

#[test]
fn every_hostile_file_gives_an_avatar_or_an_sqlstate() {
    let db = TestDb::new("hostile");
    let mut c = db.connect();
    let mut report = Vec::new();
    for (i, (name, file, expect)) in corpus().into_iter().enumerate() {
        let resource = format!("hostile,{i}");
        let before = avatars(&mut c);
        match set(&mut c, &resource, &file) {
            Ok(id) => {
                assert_ne!(expect, Expect::Refused, "{name} should have been refused");
                let master = c
                    .query_one(
                        "SELECT image, width FROM avatar.avatar WHERE id = $1",
                        &[&id],
                    )
                    .unwrap();
                let (bytes, width): (Vec<u8>, i32) = (master.get(0), master.get(1));
                assert_eq!(
                    dimensions(&bytes),
                    (width as u32, width as u32),
                    "{name}: square master"
                );
                for size in [1, 64, 2048] {
                    let jpeg = get(&mut c, id, size).unwrap().expect("an avatar");
                    assert_eq!(
                        dimensions(&jpeg),
                        (size as u32, size as u32),
                        "{name} at {size}"
                    );
                }
                report.push(format!("{name}: avatar, {width} px master"));
            }
            Err(e) => {
                let code = e
                    .code()
                    .unwrap_or_else(|| panic!("{name}: not a server error: {e}"))
                    .code();
                assert_ne!(expect, Expect::Avatar, "{name} was refused: {e}");
                assert!(
                    ["22023", "22P03", "54000", "0A000"].contains(&code),
                    "{name}: unexpected SQLSTATE {code}: {e}"
                );
                assert_eq!(avatars(&mut c), before, "{name}: a refusal writes nothing");
                report.push(format!("{name}: {code}"));
            }
        }
    }
    // The backend that ran all of that is still the same one, alive.
    let alive: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(alive, 1);
    println!("{}", report.join("\n"));
}

/// Colour survives the odd encodings: CMYK and YCCK red stay red.
#[test]
fn cmyk_and_ycck_decode_to_the_right_colour() {
    let db = TestDb::new("cmyk");
    let mut c = db.connect();
    let cmyk: Vec<u8> = (0..64 * 64).flat_map(|_| [0u8, 235, 225, 35]).collect();
    for colour in [
        jpeg_encoder::ColorType::Cmyk,
        jpeg_encoder::ColorType::CmykAsYcck,
    ] {
        let id = set(&mut c, "users,1", &jpeg_with(colour, &cmyk, 64, false)).unwrap();
        let jpeg = get(&mut c, id, 8).unwrap().unwrap();
        let pixel = image::load_from_memory(&jpeg)
            .unwrap()
            .to_rgb8()
            .get_pixel(4, 4)
            .0;
        assert!(
            pixel[0] > 150 && pixel[1] < 90 && pixel[2] < 90,
            "{colour:?} gave {pixel:?}"
        );
    }
}
