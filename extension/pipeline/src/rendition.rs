//! Which bytes answer `avatar_get`: a memoized rendition, or one made from
//! the nearest source and memoized. The extension gives this its tables
//! through [`Store`]; a test gives it a script.
//!
//! The invariant: a rendition is only ever labelled with the SHA-1 of the
//! master it was made from. Each read of the store may see a different
//! master (another transaction can commit between any two), so a digest
//! travels with the bytes it names, from the read that returned them to the
//! memoizing write, and never from one read to another's bytes.

use crate::{render_source, Error, Format, Pipeline, MEZZANINE};

/// The tables, for one avatar. Each call may see a newer master than the
/// one before it.
pub trait Store {
    /// The current master's digest and side, and the rendition of `side`
    /// in `format` if one was memoized from it; `None` if the avatar is
    /// gone or disabled.
    fn lookup(&mut self, side: u32, format: Format) -> Option<Lookup>;
    /// The current master; `None` if the avatar is gone or disabled.
    fn master(&mut self) -> Option<Master>;
    /// Keeps `image`, made from the master whose SHA-1 is `made_from`, if
    /// that master is still current (and the store may write at all).
    fn memoize(&mut self, side: u32, format: Format, made_from: &str, image: &[u8]);
}

pub struct Lookup {
    pub sha1: String,
    pub master_side: u32,
    pub image: Option<Vec<u8>>,
}

pub struct Master {
    pub sha1: String,
    pub side: u32,
    pub image: Vec<u8>,
}

/// Bytes served, and the SHA-1 of the master they were made from: the
/// version and ETag that belong with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub sha1: String,
    pub image: Vec<u8>,
}

/// Bytes to render from, with the digest of the master they came from.
struct Source {
    sha1: String,
    image: Vec<u8>,
}

impl Pipeline<'_> {
    /// The rendition of `side` (already quantised) in `format`.
    pub fn rendition(
        &self,
        store: &mut impl Store,
        side: u32,
        format: Format,
    ) -> Result<Option<Rendition>, Error> {
        let Some(found) = store.lookup(side, format) else {
            return Ok(None);
        };
        if let Some(image) = found.image {
            return Ok(Some(Rendition {
                sha1: found.sha1,
                image,
            }));
        }
        let Some(source) = self.source(store, side, found.master_side)? else {
            return Ok(None);
        };
        self.make(store, &source, side, format).map(Some)
    }

    /// The rendition of exactly `side` pixels, which need not be a
    /// quantised size: made from the memoized rendition of the quantised
    /// size in the same format (the nearest larger one kept), and not
    /// memoized itself.
    pub fn rendition_exact(
        &self,
        store: &mut impl Store,
        side: u32,
        format: Format,
    ) -> Result<Option<Rendition>, Error> {
        let kept = crate::quantise(i64::from(side))?;
        let Some(source) = self.rendition(store, kept, format)? else {
            return Ok(None);
        };
        if kept == side {
            return Ok(Some(source));
        }
        Ok(Some(Rendition {
            image: self.render_as(&source.image, side, format)?,
            sha1: source.sha1,
        }))
    }

    /// The renditions of `side` in each of `formats`, all of one master.
    pub fn renditions(
        &self,
        store: &mut impl Store,
        side: u32,
        formats: &[Format],
    ) -> Result<Option<Vec<Rendition>>, Error> {
        let mut found = Vec::with_capacity(formats.len());
        for &format in formats {
            let Some(lookup) = store.lookup(side, format) else {
                return Ok(None);
            };
            found.push(lookup);
        }
        let first = found.first().map(|l| (l.sha1.clone(), l.master_side));
        let all_hits_of_one = found
            .iter()
            .all(|l| l.image.is_some() && first.as_ref().is_some_and(|f| f.0 == l.sha1));
        if all_hits_of_one {
            return Ok(Some(
                found
                    .into_iter()
                    .map(|l| Rendition {
                        sha1: l.sha1,
                        image: l.image.expect("checked"),
                    })
                    .collect(),
            ));
        }
        let hint = first.map_or(0, |f| f.1);
        let Some(source) = self.source(store, side, hint)? else {
            return Ok(None);
        };
        let mut renditions = Vec::with_capacity(formats.len());
        for (&format, lookup) in formats.iter().zip(found) {
            renditions.push(match lookup.image {
                // A hit of the source's own master is one of the set.
                Some(image) if lookup.sha1 == source.sha1 => Rendition {
                    sha1: lookup.sha1,
                    image,
                },
                _ => self.make(store, &source, side, format)?,
            });
        }
        Ok(Some(renditions))
    }

    /// What `side` is rendered from: the memoized mezzanine, a new one made
    /// from the master, or the master itself. `hint` is the master's side as
    /// a lookup saw it; each read below decides again by what it returned.
    fn source(
        &self,
        store: &mut impl Store,
        side: u32,
        hint: u32,
    ) -> Result<Option<Source>, Error> {
        if render_source(side, hint) == Some(MEZZANINE) {
            if let Some(Lookup {
                sha1,
                master_side,
                image: Some(image),
            }) = store.lookup(MEZZANINE, Format::Jpeg)
            {
                if render_source(side, master_side) == Some(MEZZANINE) {
                    return Ok(Some(Source { sha1, image }));
                }
            }
        }
        let Some(master) = store.master() else {
            return Ok(None);
        };
        let source = Source {
            sha1: master.sha1,
            image: master.image,
        };
        Ok(Some(match render_source(side, master.side) {
            Some(mezzanine) => Source {
                image: self.make(store, &source, mezzanine, Format::Jpeg)?.image,
                sha1: source.sha1,
            },
            None => source,
        }))
    }

    fn make(
        &self,
        store: &mut impl Store,
        source: &Source,
        side: u32,
        format: Format,
    ) -> Result<Rendition, Error> {
        let image = self.render_as(&source.image, side, format)?;
        store.memoize(side, format, &source.sha1, &image);
        Ok(Rendition {
            sha1: source.sha1.clone(),
            image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;
    use image::{DynamicImage, Rgb, RgbImage};
    use std::collections::HashMap;

    /// A master of one colour, so every rendition tells what it was made from.
    fn master(rgb: [u8; 3]) -> Master {
        let pipeline = Pipeline::default();
        let png = samples::encode(
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(900, 900, Rgb(rgb))),
            image::ImageFormat::Png,
        );
        let avatar = pipeline.normalise(&png, 2048).unwrap();
        Master {
            sha1: avatar.sha1_hex(),
            side: avatar.side,
            image: avatar.jpeg,
        }
    }

    fn colour(image: &[u8]) -> [u8; 3] {
        image::load_from_memory(image)
            .unwrap()
            .to_rgb8()
            .get_pixel(0, 0)
            .0
    }

    /// The tables as concurrent transactions could show them: before each
    /// read or write, the master that is current is the next in `script`
    /// (then the last one for good). Memoizing follows the SQL: only under
    /// the current master's digest.
    struct Scripted {
        masters: Vec<(Master, [u8; 3])>,
        script: Vec<usize>,
        step: usize,
        rows: HashMap<(u32, Format), (String, Vec<u8>)>,
        memoized: Vec<(String, Vec<u8>)>,
    }

    impl Scripted {
        fn new(script: &[usize]) -> Scripted {
            let colours = [[220, 30, 30], [30, 30, 220]];
            Scripted {
                masters: colours.into_iter().map(|c| (master(c), c)).collect(),
                script: script.to_vec(),
                step: 0,
                rows: HashMap::new(),
                memoized: vec![],
            }
        }

        fn now(&mut self) -> &Master {
            let index = self.script[self.step.min(self.script.len() - 1)];
            self.step += 1;
            &self.masters[index].0
        }

        fn colour_of(&self, sha1: &str) -> [u8; 3] {
            self.masters.iter().find(|m| m.0.sha1 == sha1).unwrap().1
        }
    }

    impl Store for Scripted {
        fn lookup(&mut self, side: u32, format: Format) -> Option<Lookup> {
            let (sha1, master_side) = {
                let m = self.now();
                (m.sha1.clone(), m.side)
            };
            let image = self
                .rows
                .get(&(side, format))
                .filter(|row| row.0 == sha1)
                .map(|row| row.1.clone());
            Some(Lookup {
                sha1,
                master_side,
                image,
            })
        }

        fn master(&mut self) -> Option<Master> {
            let m = self.now();
            Some(Master {
                sha1: m.sha1.clone(),
                side: m.side,
                image: m.image.clone(),
            })
        }

        fn memoize(&mut self, side: u32, format: Format, made_from: &str, image: &[u8]) {
            if self.now().sha1 == made_from {
                self.rows
                    .insert((side, format), (made_from.to_string(), image.to_vec()));
                self.memoized.push((made_from.to_string(), image.to_vec()));
            }
        }
    }

    fn assert_labelled_by_origin(store: &Scripted, served: &[Rendition]) {
        for (sha1, image) in &store.memoized {
            assert_eq!(
                colour_close(colour(image)),
                store.colour_of(sha1),
                "a stored row"
            );
        }
        for rendition in served {
            assert_eq!(
                colour_close(colour(&rendition.image)),
                store.colour_of(&rendition.sha1),
                "a served rendition"
            );
        }
    }

    /// JPEG's loss, rounded back to the two colours used.
    fn colour_close(c: [u8; 3]) -> [u8; 3] {
        if c[0] > c[2] {
            [220, 30, 30]
        } else {
            [30, 30, 220]
        }
    }

    /// The review's sequence: the lookup sees A and misses, B is committed,
    /// the master read returns B, A is committed again, and the rendition
    /// made from B must not be stored (or served) as A's.
    #[test]
    fn a_rendition_is_labelled_with_the_master_it_was_made_from() {
        let pipeline = Pipeline::default();
        // Each step is one read or write: every interleaving of A and B
        // over the first six, at 64 px (from the mezzanine) and 600 px.
        for side in [64, 600] {
            for bits in 0..64u32 {
                let script: Vec<usize> = (0..6).map(|i| ((bits >> i) & 1) as usize).collect();
                let mut store = Scripted::new(&script);
                let served = pipeline
                    .rendition(&mut store, side, Format::Jpeg)
                    .unwrap()
                    .unwrap();
                assert_labelled_by_origin(&store, &[served]);
            }
        }
    }

    #[test]
    fn the_renditions_of_one_call_are_of_one_master() {
        let pipeline = Pipeline::default();
        for bits in 0..256u32 {
            let script: Vec<usize> = (0..8).map(|i| ((bits >> i) & 1) as usize).collect();
            let mut store = Scripted::new(&script);
            let served = pipeline
                .renditions(&mut store, 64, &[Format::Png, Format::Jpeg, Format::Webp])
                .unwrap()
                .unwrap();
            assert_labelled_by_origin(&store, &served);
            assert!(
                served.windows(2).all(|w| w[0].sha1 == w[1].sha1),
                "{script:?}: renditions of two masters"
            );
        }
    }

    #[test]
    fn exact_sizes_come_from_the_quantised_rendition_and_add_no_rows() {
        let pipeline = Pipeline::default();
        let mut store = Scripted::new(&[0]);
        for (side, format) in [
            (120, Format::Jpeg),
            (72, Format::Png),
            (1, Format::Webp),
            (2047, Format::Jpeg),
        ] {
            let exact = pipeline
                .rendition_exact(&mut store, side, format)
                .unwrap()
                .unwrap();
            let image = image::load_from_memory(&exact.image).unwrap();
            assert_eq!(
                (image.width(), image.height()),
                (side, side),
                "{side} {format:?}"
            );
            assert_eq!(colour_close(colour(&exact.image)), [220, 30, 30]);
        }
        let mut kept: Vec<(u32, Format)> = store.rows.keys().copied().collect();
        kept.sort_by_key(|&(side, format)| (side, format.name()));
        assert_eq!(
            kept,
            [
                (1, Format::Webp),
                (80, Format::Png),
                (128, Format::Jpeg),
                (512, Format::Jpeg),
                (2048, Format::Jpeg),
            ],
            "only quantised sizes (and the mezzanine) are memoized"
        );
        let quantised = pipeline.rendition(&mut store, 128, Format::Jpeg).unwrap();
        let exact = pipeline
            .rendition_exact(&mut store, 128, Format::Jpeg)
            .unwrap();
        assert_eq!(exact, quantised, "a quantised size is the rendition itself");
    }

    #[test]
    fn hits_are_served_and_misses_memoized_once() {
        let pipeline = Pipeline::default();
        let mut store = Scripted::new(&[0]);
        let first = pipeline
            .rendition(&mut store, 64, Format::Jpeg)
            .unwrap()
            .unwrap();
        assert_eq!(store.memoized.len(), 2, "64 px and the mezzanine");
        let again = pipeline
            .rendition(&mut store, 64, Format::Jpeg)
            .unwrap()
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(store.memoized.len(), 2, "a hit");
        let all = pipeline
            .renditions(&mut store, 64, &[Format::Png, Format::Jpeg])
            .unwrap()
            .unwrap();
        assert_eq!(all[1], first);
        assert_eq!(store.memoized.len(), 3, "only the PNG was made");
    }
}
