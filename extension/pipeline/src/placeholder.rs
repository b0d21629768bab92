//! Generated avatars for owners without one: Libravatar's `d=` defaults,
//! drawn here rather than fetched, and deterministic in their seed so they
//! can be cached like any rendition.

use sha1::{Digest, Sha1};

use crate::{encode, Error, MAX_SIZE};

pub use avatar_contract::placeholder::Kind as Placeholder;

/// The image of `kind` for `seed` (an address hash, a name, a resource) at
/// `side` x `side`, in `kind.format()`.
pub fn render(kind: Placeholder, seed: &str, side: u32, quality: u8) -> Result<Vec<u8>, Error> {
    if !(1..=MAX_SIZE).contains(&side) {
        return Err(Error::SizeOutOfRange(i64::from(side)));
    }
    let hash: [u8; 20] = Sha1::digest(seed.as_bytes()).into();
    let rgb = match kind {
        Placeholder::Blank => return blank_png(side),
        Placeholder::Silhouette => silhouette(side),
        Placeholder::Initial => match initial(seed) {
            Some(letter) => letter_on(letter, colour(&hash, 0), side),
            // No letter to draw (an empty name, or a script the font
            // lacks): the same silhouette as `mp`.
            None => silhouette(side),
        },
        Placeholder::Color => colour(&hash, 0).repeat(side as usize * side as usize),
        Placeholder::Identicon => grid(&hash, side, 5, &[LIGHT, colour(&hash, 0)]),
        Placeholder::Retro => grid(
            &hash,
            side,
            8,
            &[LIGHT, colour(&hash, 0), colour(&hash, 7), colour(&hash, 13)],
        ),
    };
    encode::jpeg(&rgb, side, quality)
}

const LIGHT: [u8; 3] = [240, 240, 240];

/// A saturated, mid-light colour from two bytes of the hash (as a hue).
fn colour(hash: &[u8; 20], at: usize) -> [u8; 3] {
    let hue = f32::from(u16::from_be_bytes([hash[at], hash[at + 1]])) / 65536.0 * 6.0;
    let (s, l) = (0.55f32, 0.5f32);
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (hue % 2.0 - 1.0).abs());
    let (r, g, b) = match hue as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [r, g, b].map(|v| ((v + m) * 255.0).round() as u8)
}

/// A `cells` x `cells` pattern, mirrored left to right like a face, with a
/// margin of half a cell; each cell's colour index comes from the hash.
fn grid(hash: &[u8; 20], side: u32, cells: u32, palette: &[[u8; 3]]) -> Vec<u8> {
    let half = cells.div_ceil(2);
    let pick = |cx: u32, cy: u32| -> [u8; 3] {
        let cx = cx.min(cells - 1 - cx); // mirror
        let n = (cy * half + cx) as usize;
        let bits = u32::from(hash[(n / 4 + 2) % 20]) >> ((n % 4) * 2) & 0b11;
        // The background takes a share, so every pattern has a shape.
        let index = if bits == 0 || (palette.len() == 2 && bits == 1) {
            0
        } else {
            (bits as usize - 1) % (palette.len() - 1) + 1
        };
        palette[index]
    };
    let total = cells * 2 + 2; // a margin of half a cell on each side
    let mut rgb = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let (gx, gy) = (x * total / side, y * total / side);
            let pixel = if gx == 0 || gy == 0 || gx == total - 1 || gy == total - 1 {
                LIGHT
            } else {
                pick((gx - 1) / 2, (gy - 1) / 2)
            };
            rgb.extend_from_slice(&pixel);
        }
    }
    rgb
}

/// A head and shoulders in light grey on mid grey, antialiased by
/// sampling each pixel 4x4 times.
fn silhouette(side: u32) -> Vec<u8> {
    const BACK: f32 = 190.0;
    const FORE: f32 = 245.0;
    let inside = |u: f32, v: f32| -> bool {
        let head = (u - 0.5).powi(2) + (v - 0.38).powi(2) < 0.18f32.powi(2);
        let shoulders = v > 0.62 && ((u - 0.5) / 0.34).powi(2) + ((v - 0.98) / 0.36).powi(2) < 1.0;
        head || shoulders
    };
    let mut rgb = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let mut covered = 0u32;
            for sy in 0..4 {
                for sx in 0..4 {
                    let u = (x as f32 + (sx as f32 + 0.5) / 4.0) / side as f32;
                    let v = (y as f32 + (sy as f32 + 0.5) / 4.0) / side as f32;
                    covered += u32::from(inside(u, v));
                }
            }
            let t = covered as f32 / 16.0;
            let grey = (BACK + (FORE - BACK) * t).round() as u8;
            rgb.extend_from_slice(&[grey; 3]);
        }
    }
    rgb
}

/// The letter an `initial` placeholder shows: the first alphanumeric
/// character of `name`, upper-cased, if the bundled font can draw it.
fn initial(name: &str) -> Option<char> {
    use ab_glyph::Font;
    let first = name.chars().find(|c| c.is_alphanumeric())?;
    let letter = first.to_uppercase().next()?;
    (font().glyph_id(letter).0 != 0).then_some(letter)
}

fn font() -> ab_glyph::FontRef<'static> {
    ab_glyph::FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT)
        .expect("the bundled font parses")
}

/// `letter` in white, its ink box centred, on `background`.
fn letter_on(letter: char, background: [u8; 3], side: u32) -> Vec<u8> {
    use ab_glyph::{Font, ScaleFont};
    let font = font();
    let mut rgb: Vec<u8> = background
        .iter()
        .copied()
        .cycle()
        .take((side * side * 3) as usize)
        .collect();
    let scaled = font.as_scaled(side as f32 * 0.6);
    let glyph = scaled.scaled_glyph(letter);
    let Some(outline) = font.outline_glyph(glyph) else {
        return rgb; // a glyph without ink, such as a space
    };
    let bounds = outline.px_bounds();
    let dx = ((side as f32 - bounds.width()) / 2.0).round() as i64;
    let dy = ((side as f32 - bounds.height()) / 2.0).round() as i64;
    outline.draw(|x, y, coverage| {
        let (x, y) = (i64::from(x) + dx, i64::from(y) + dy);
        if !(0..i64::from(side)).contains(&x) || !(0..i64::from(side)).contains(&y) {
            return;
        }
        let at = ((y as u32 * side + x as u32) * 3) as usize;
        for (c, back) in rgb[at..at + 3].iter_mut().zip(background) {
            let t = coverage.clamp(0.0, 1.0);
            *c = (f32::from(back) + (255.0 - f32::from(back)) * t).round() as u8;
        }
    });
    rgb
}

fn blank_png(side: u32) -> Result<Vec<u8>, Error> {
    let image = image::RgbaImage::new(side, side);
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("png encode: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> image::DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    #[test]
    fn every_kind_has_the_size_asked_for() {
        for kind in [
            Placeholder::Silhouette,
            Placeholder::Identicon,
            Placeholder::Retro,
            Placeholder::Blank,
            Placeholder::Initial,
        ] {
            for side in [1, 7, 80, 512] {
                let image = decode(&render(kind, "a@example.org", side, 90).unwrap());
                assert_eq!((image.width(), image.height()), (side, side), "{kind:?}");
            }
        }
        assert!(render(Placeholder::Identicon, "x", 0, 90).is_err());
        assert!(render(Placeholder::Identicon, "x", 2049, 90).is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_others_differ() {
        for kind in [
            Placeholder::Identicon,
            Placeholder::Retro,
            Placeholder::Initial,
        ] {
            let a = render(kind, "alice", 64, 90).unwrap();
            assert_eq!(a, render(kind, "alice", 64, 90).unwrap(), "{kind:?}");
            let distinct: std::collections::HashSet<Vec<u8>> = (0..50)
                .map(|i| render(kind, &format!("user{i}"), 64, 90).unwrap())
                .collect();
            // Initials share a letter here, so only the colour (a hue
            // rounded to 8-bit RGB) tells them apart.
            let floor = if kind == Placeholder::Initial { 45 } else { 48 };
            assert!(
                distinct.len() >= floor,
                "{kind:?}: {} of 50 distinct",
                distinct.len()
            );
        }
    }

    #[test]
    fn identicons_are_mirrored_and_have_a_shape() {
        let image = decode(&render(Placeholder::Identicon, "bob", 120, 100).unwrap()).to_rgb8();
        let differs = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).any(|(x, y)| x.abs_diff(y) > 24);
        // At 120 px: 12 columns of 10 px, a margin column each side, and
        // five cells of two columns between them. Sample each cell's centre.
        let mut coloured = 0;
        for cy in 0..5 {
            for cx in 0..5 {
                let at = |cx: u32| image.get_pixel(10 + cx * 20 + 10, 10 + cy * 20 + 10).0;
                assert!(!differs(at(cx), at(4 - cx)), "cell ({cx}, {cy}) mirrored");
                coloured += u32::from(differs(at(cx), LIGHT));
            }
        }
        assert!(coloured > 0 && coloured < 25, "{coloured} coloured cells");
    }

    #[test]
    fn blank_is_transparent() {
        let image = decode(&render(Placeholder::Blank, "x", 16, 90).unwrap()).to_rgba8();
        assert!(image.pixels().all(|p| p.0[3] == 0));
        assert_eq!(Placeholder::Blank.format().mime_type(), "image/png");
    }

    #[test]
    fn libravatar_names() {
        assert_eq!(Placeholder::parse("mp"), Some(Placeholder::Silhouette));
        assert_eq!(Placeholder::parse("mm"), Some(Placeholder::Silhouette));
        assert_eq!(Placeholder::parse("robohash"), Some(Placeholder::Retro));
        assert_eq!(Placeholder::parse("404"), None);
        assert_eq!(Placeholder::parse("https://x"), None);
    }

    #[test]
    fn initials_show_the_first_letter_in_white_in_the_middle() {
        let ink = |name: &str| {
            let image = decode(&render(Placeholder::Initial, name, 128, 100).unwrap()).to_rgb8();
            let white = |x: u32, y: u32| image.get_pixel(x, y).0.iter().all(|&c| c > 225);
            let mut inked = vec![];
            for y in 0..128 {
                for x in 0..128 {
                    if white(x, y) {
                        inked.push((x, y));
                    }
                }
            }
            (image.get_pixel(2, 2).0, inked)
        };
        let (background, ada) = ink("ada lovelace");
        assert!(background.iter().any(|&c| c < 200), "a coloured background");
        assert!(ada.len() > 300, "{} white pixels", ada.len());
        let (cx, cy) = ada
            .iter()
            .fold((0, 0), |(sx, sy), &(x, y)| (sx + x, sy + y));
        let (cx, cy) = (cx / ada.len() as u32, cy / ada.len() as u32);
        assert!(
            (54..=74).contains(&cx) && (54..=74).contains(&cy),
            "centred: ({cx}, {cy})"
        );
        assert_ne!(ink("Bob").1, ada);
        // Case and leading punctuation do not matter; the letter does.
        assert_eq!(initial("  'ada'"), Some('A'));
        assert_eq!(initial("émile"), Some('É'));
        assert_eq!(initial("42 crows"), Some('4'));
    }

    #[test]
    fn initials_without_a_letter_fall_back_to_the_silhouette() {
        let silhouette = render(Placeholder::Silhouette, "", 64, 90).unwrap();
        for name in ["", "  ", "!?", "李小龍"] {
            assert_eq!(initial(name), None, "{name:?}");
            assert_eq!(
                render(Placeholder::Initial, name, 64, 90).unwrap(),
                silhouette
            );
        }
    }

    #[test]
    fn the_silhouette_is_a_light_shape_on_grey() {
        let image = decode(&render(Placeholder::Silhouette, "", 100, 95).unwrap()).to_rgb8();
        let head = image.get_pixel(50, 38).0[0];
        let corner = image.get_pixel(3, 3).0[0];
        assert!(head > corner + 30, "head {head}, background {corner}");
    }
}
