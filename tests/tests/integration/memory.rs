//! Attacker 4's other weapon: a small file that decodes to a great many
//! pixels. Within the limits, an upload costs a backend at most twice the
//! 8-bit RGBA buffer of its pixels; past what the machine can give, it is
//! an ERROR (53200), never an abort that restarts every backend.

use std::io::Write;
use std::process::Command;

use avatar_pipeline::samples;
use pg_avatar_tests::*;

/// A PNG of `width` x `height` pixels written a row at a time, so the test
/// never holds the pixels either. Smooth content: it compresses to little.
fn big_png(width: u32, height: u32, colour: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(colour);
        encoder.set_depth(depth);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let samples = colour.samples()
            * if depth == png::BitDepth::Sixteen {
                2
            } else {
                1
            };
        let mut row = vec![0u8; width as usize * samples];
        for y in 0..height {
            for (i, byte) in row.iter_mut().enumerate() {
                *byte = ((i / samples) as u32 / 64 + y / 64) as u8;
            }
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// The review's file: 379 KiB of 16-bit RGBA PNG, 7070 x 7070, under the
/// default pixel limit, that grew a backend by 578 MiB; and what a second
/// review tried after it: an animated WebP, whose decoder holds a canvas
/// beside the frame, and progressive JPEGs with every component at full
/// resolution, whose coefficients are all held until the last scan (these
/// are refused at this size). Each is accepted within twice its RGBA
/// pixels, or refused (54000) within them.
#[test]
fn an_upload_costs_at_most_twice_its_rgba_pixels() {
    let db = TestDb::new("memory");
    let side = 7070;
    let png = |colour, depth| (side, side, big_png(side, side, colour, depth), None);
    let cases = [
        (
            "16-bit RGBA PNG",
            png(png::ColorType::Rgba, png::BitDepth::Sixteen),
        ),
        (
            "16-bit grey PNG",
            png(png::ColorType::Grayscale, png::BitDepth::Sixteen),
        ),
        (
            "8-bit RGBA PNG",
            png(png::ColorType::Rgba, png::BitDepth::Eight),
        ),
        (
            "animated WebP",
            (
                4000,
                4000,
                samples::animated_webp(&samples::smooth_rgba(4000, 4000)),
                None,
            ),
        ),
        (
            "GIF whose frame leaves a column of its screen",
            (
                side,
                side,
                samples::gif_with_screen((7070, 7070), (7069, 7070), (1, 0)),
                None,
            ),
        ),
        (
            "progressive 4:4:4 JPEG",
            (
                4000,
                12_500,
                samples::progressive_full_chroma_jpeg(4000, 12_500, false),
                Some("54000"),
            ),
        ),
        (
            "progressive CMYK JPEG",
            (
                4000,
                12_500,
                samples::progressive_full_chroma_jpeg(4000, 12_500, true),
                Some("54000"),
            ),
        ),
        // Sequential, but in a scan per component: zune-jpeg then holds
        // every coefficient, as for a progressive file.
        (
            "CMYK JPEG in a scan per component",
            (
                8000,
                6250,
                samples::blank_jpeg(8000, 6250, &[(1, 1); 4], &[&[0], &[1], &[2], &[3]]),
                Some("54000"),
            ),
        ),
        // The walk must read the frame the decoder reads, or it would not
        // know the file for progressive, nor what it costs.
        (
            "progressive CMYK JPEG behind a frame header zune-jpeg skips",
            (
                4000,
                12_500,
                samples::behind_a_hidden_frame(&samples::progressive_full_chroma_jpeg(
                    4000, 12_500, true,
                )),
                Some("22023"),
            ),
        ),
    ];
    for (what, (width, height, file, refused)) in cases {
        let rgba8 = u64::from(width) * u64::from(height) * 4;
        let (mut c, pid) = backend(&db);
        let before = status_bytes(pid, "VmRSS:");
        let outcome = set(&mut c, "users,1", &file);
        let grew = status_bytes(pid, "VmHWM:") - before;
        println!(
            "{what}, {} KiB: the backend grew by {} MiB ({:.2}x its RGBA pixels)",
            file.len() >> 10,
            grew >> 20,
            grew as f64 / rgba8 as f64
        );
        match refused {
            None => drop(outcome.unwrap_or_else(|e| panic!("{what}: {e}"))),
            Some(code) => assert_eq!(sqlstate(outcome), code, "{what}"),
        }
        assert!(
            grew <= 2 * rgba8,
            "{what}: grew by {} MiB, over twice the {} MiB of its RGBA pixels",
            grew >> 20,
            rgba8 >> 20
        );
    }
}

/// The kernel refuses the backend more memory than it has (as under
/// `vm.overcommit_memory = 2`, or a container's limit): the upload fails
/// with SQLSTATE 53200 and the same backend goes on serving. Each file is
/// tried with its backend's address space limited to a range of headrooms
/// around what it needs, so that every allocation on its way (the
/// decoder's own, the resize's, the encoder's) meets a limit in one of
/// them: none may abort the backend.
#[test]
fn running_out_of_memory_is_an_error_not_a_crash() {
    let db = TestDb::new("oom");
    let side = 7070;
    // (what, the file, headrooms in MiB)
    let mib = |from: u64, to: u64, step: usize| (from..=to).step_by(step).collect::<Vec<_>>();
    let cases = [
        (
            "a 20000 px grey PNG",
            big_png(
                20_000,
                20_000,
                png::ColorType::Grayscale,
                png::BitDepth::Eight,
            ),
            vec![256],
        ),
        (
            "a one-colour 7070 px PNG",
            big_png(
                side as u32,
                side as u32,
                png::ColorType::Rgb,
                png::BitDepth::Eight,
            ),
            mib(100, 230, 10),
        ),
        (
            "a GIF with a 1 px screen and a 7070 px frame",
            samples::gif_with_screen((1, 1), (7070, 7070), (0, 0)),
            mib(10, 100, 15),
        ),
        (
            "a GIF whose frame leaves a column of its screen",
            samples::gif_with_screen((7070, 7070), (7069, 7070), (1, 0)),
            mib(100, 400, 25),
        ),
        (
            "a progressive JPEG",
            samples::progressive_jpeg_with_scans(&samples::photo(side as u32, side as u32), 0),
            mib(100, 300, 25),
        ),
        (
            "an animated WebP",
            samples::animated_webp(&samples::smooth_rgba(3000, 3000)),
            mib(8, 80, 12),
        ),
    ];
    for (what, file, headrooms) in cases {
        let mut refused = 0;
        for &headroom in &headrooms {
            let (mut c, pid) = backend(&db);
            let id = set(&mut c, "users,1", &png(64, 64)).unwrap();
            c.batch_execute("SET pg_avatar.max_input_pixels = 400000000")
                .unwrap();
            limit_address_space(pid, status_bytes(pid, "VmSize:") + (headroom << 20));
            match set(&mut c, "users,2", &file) {
                Ok(_) => {}
                Err(error) => {
                    let message = error.as_db_error().map(|e| e.message().to_string());
                    assert_eq!(
                        sqlstate(Err::<(), _>(error)),
                        "53200",
                        "{what}, {headroom} MiB: {message:?}"
                    );
                    refused += 1;
                    let written: i64 = c
                        .query_one(
                            "SELECT count(*) FROM avatar.avatar WHERE resource = 'users,2'",
                            &[],
                        )
                        .unwrap()
                        .get(0);
                    assert_eq!(written, 0, "{what}, {headroom} MiB: nothing was written");
                }
            }
            assert_eq!(
                get(&mut c, id, 32).unwrap().map(|jpeg| jpeg.len() > 100),
                Some(true),
                "{what}, {headroom} MiB: the same backend still serves"
            );
            c.batch_execute("SELECT avatar.avatar_delete('users,2')")
                .unwrap();
        }
        assert!(refused > 0, "{what}: no headroom was tight enough to test");
    }
}

/// Lowers the backend's address-space limit. Only its own user may (root
/// may lack CAP_SYS_RESOURCE in a container), so prlimit runs as that user.
fn limit_address_space(pid: i32, bytes: u64) {
    let owner = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .expect("a Uid line")
    };
    let args = [format!("--pid={pid}"), format!("--as={bytes}:{bytes}")];
    let status = if owner(&format!("/proc/{pid}/status")) == owner("/proc/self/status") {
        Command::new("prlimit").args(&args).status()
    } else {
        let user = String::from_utf8(
            Command::new("stat")
                .args(["-c", "%U", &format!("/proc/{pid}")])
                .output()
                .expect("stat runs")
                .stdout,
        )
        .unwrap();
        let user = user.trim();
        if owner("/proc/self/status") == "0" {
            Command::new("runuser")
                .args(["-u", user, "--", "prlimit"])
                .args(&args)
                .status()
        } else {
            Command::new("sudo")
                .args(["-n", "-u", user, "prlimit"])
                .args(&args)
                .status()
        }
    }
    .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit could not limit the backend");
}
