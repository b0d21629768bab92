//! Writes the demo's uploads into a folder: `samples DIR`.
//!
//! Each file shows one thing the pipeline does: EXIF orientation, alpha
//! onto white, centre crop, enlarging small masters, and a broken upload.

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat};

use avatar_pipeline::samples;

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: samples DIR"));
    std::fs::create_dir_all(&dir)?;
    let upright = samples::scene(1200, 1600);
    let files: Vec<(&str, Vec<u8>)> = vec![
        // Stored sideways with EXIF orientation 6, as phones do.
        (
            "users,1.jpg",
            samples::jpeg_with_exif_orientation(
                &samples::stored_for(&upright, Orientation::Rotate90),
                6,
            ),
        ),
        (
            "users,2.png",
            samples::encode(
                &DynamicImage::ImageRgba8(samples::disc_with_alpha(512, [30, 90, 200])),
                ImageFormat::Png,
            ),
        ),
        (
            "users,3.webp",
            samples::encode(
                &DynamicImage::ImageRgb8(samples::scene(1000, 300)),
                ImageFormat::WebP,
            ),
        ),
        (
            "users,4.gif",
            samples::encode(
                &DynamicImage::ImageRgba8(samples::disc_with_alpha(24, [200, 40, 40])),
                ImageFormat::Gif,
            ),
        ),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes)?;
    }
    let png = &files[1].1;
    std::fs::write(dir.join("users,5.png"), &png[..png.len() / 3])?;
    Ok(())
}
