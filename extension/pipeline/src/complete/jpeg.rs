//! A JPEG's marker segments and entropy-coded data, walked as a decoder
//! reads them, to tell a whole file from a partial one and to say what
//! decoding it will cost, before any decoder runs.
//!
//! The decoders pad whatever is missing: a file cut inside a scan and
//! closed again with an end-of-image marker decodes with a grey lower part,
//! and a progressive file without its last scans at their partial quality.
//! So a sequential scan's Huffman codes are walked (without dequantising or
//! transforming anything) until every block of the frame is accounted for,
//! and a progressive file's scans must between them bring every coefficient
//! of every component to full precision.
//!
//! The walk is also where the decoders' cost is read (frame header, number
//! of scans), so it must see the file as the decoders do: a marker that only
//! belongs inside entropy-coded data (restart, TEM, a stuffed zero) where a
//! segment should begin is refused, since decoders disagree on whether such
//! a marker has a length, and a file that reads one way here and another way
//! in the decoder could hide its frame or its scans. For the same reason the
//! decoders are never given the upload itself, but the file as the walk read
//! it ([`Walked::canonical`]): the segments it checked, each with the length
//! it honoured, and nothing else, so no reader can find anything in it that
//! the walk did not.

use std::ops::Range;

/// More scans than any encoder writes (mozjpeg's searched scripts stay
/// under 64; libjpeg's default progressive script has 10): each is a pass
/// over every block, here and in a decoder that cannot be interrupted, so
/// the walk stops at the one past this.
pub const MAX_SCANS: u32 = 100;

/// Segments the decoders are given (frame, tables, restart intervals,
/// scans): an encoder writes a few tables and a restart interval, and at
/// most a table before each scan. The walk's record of them is bounded,
/// since a file of 16 MiB holds four million empty ones.
const MAX_SEGMENTS: usize = 8 * MAX_SCANS as usize;

/// The blocks a file's scans may cover between them, for a pixel limit.
/// A progressive decoder passes over every block of a scan's components
/// once per scan, uninterruptibly, so a hundred scans of a large image take
/// seconds whatever few bytes they hold (98 refinement scans of a 50 MP
/// grey image, 100 KB, took 5.8 s to decode). A quarter of the limit is
/// sixteen passes over every block of a grey image at the limit, or 5⅓
/// over a 4:4:4 one: libjpeg's default script makes 6.5 passes over a 4:2:0
/// image, 14 over a 4:4:4 one, and a 4:4:4 progressive file over a quarter
/// of the limit is refused anyway, for its memory. Small images are
/// padded to whole blocks and MCUs, so the budget never falls below
/// sixteen passes of a 4 MP image, a tenth of a second.
pub fn max_passes(max_pixels: u64) -> u64 {
    (max_pixels / 4).max(1 << 20)
}

/// What a JPEG's frame header and scans say about decoding it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JpegFrame {
    pub progressive: bool,
    pub width: u16,
    pub height: u16,
    pub components: u8,
    /// Each component's horizontal and vertical sampling factors.
    pub sampling: [(u8, u8); 4],
    /// Start-of-scan markers before the end.
    pub scans: u32,
    /// Blocks the scans cover between them: a decoder's passes.
    pub passes: u64,
    /// A sequential frame whose first scan leaves out a component.
    pub split: bool,
}

impl JpegFrame {
    /// The sampling factors of the frame's components.
    pub fn component_sampling(&self) -> &[(u8, u8)] {
        &self.sampling[..usize::from(self.components.min(4))]
    }

    /// Whether a component is at less than the frame's full resolution.
    pub fn subsampled(&self) -> bool {
        self.component_sampling().iter().any(|&f| f != (1, 1))
    }

    /// Whether a decoder holds every coefficient until the last scan: in a
    /// progressive file, and in a sequential one split into scans that
    /// each leave a component out (zune-jpeg then buffers them all).
    pub fn holds_coefficients(&self) -> bool {
        self.progressive || self.split
    }

    /// The bytes a progressive decoder holds for every coefficient of a
    /// `width` x `height` image until its last scan: 64 of 2 bytes a block,
    /// in each component at its own resolution.
    pub fn coefficient_bytes(&self, width: u32, height: u32) -> u64 {
        let components = self.component_sampling();
        let (max_h, max_v) = max_sampling(components);
        components
            .iter()
            .map(|&(h, v)| blocks(width, h, max_h) * blocks(height, v, max_v) * 128)
            .sum()
    }
}

/// The samplings the decoders here upsample correctly: factors of 1, 2 or
/// 4, every component either at the frame's full resolution or at one
/// common reduced one that divides it (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1,
/// CMYK with K at full resolution). zune-jpeg indexed out of its buffers
/// on others, such as Y 1x1 with Cb 2x2 and Cr 1x1: it panicked, which
/// PostgreSQL survives, but a panic is a bug no file should reach.
fn sampling_decodes(components: &[(u8, u8)]) -> bool {
    let factor = |f: u8| (1..=4).contains(&f) && f != 3;
    if components.is_empty() || !components.iter().all(|&(h, v)| factor(h) && factor(v)) {
        return false;
    }
    let (h, v) = max_sampling(components);
    let mut reduced = components.iter().filter(|&&c| c != (h, v));
    let first = reduced.clone().next().copied();
    first.is_none_or(|(rh, rv)| h % rh == 0 && v % rv == 0) && reduced.all(|&c| Some(c) == first)
}

fn max_sampling(components: &[(u8, u8)]) -> (u8, u8) {
    let max_h = components.iter().map(|c| c.0).max().unwrap_or(1).max(1);
    let max_v = components.iter().map(|c| c.1).max().unwrap_or(1).max(1);
    (max_h, max_v)
}

/// Blocks of 8 along an `extent` sampled at `factor` of `max`.
fn blocks(extent: u32, factor: u8, max: u8) -> u64 {
    (u64::from(extent) * u64::from(factor))
        .div_ceil(u64::from(max))
        .div_ceil(8)
}

/// Why a JPEG is not whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// No end-of-image marker: the file was cut.
    Cut,
    /// A scan's data ends before its last block.
    ShortScan,
    /// The scans leave coefficients of a component unsent, or imprecise.
    MissingScans,
    /// A marker that belongs inside a scan where a segment should begin.
    StrayMarker,
    /// A Huffman code that no table defines, or a table that is missing.
    BadCode,
    /// The walk's own record of the coefficients, of this many bytes,
    /// could not be allocated.
    NoMemory(usize),
    /// Not partial, but a frame over the pixel limit.
    TooManyPixels(JpegFrame),
    /// Not partial, but more than [`MAX_SCANS`] scans.
    TooManyScans(u32),
    /// Not partial, but scans covering more blocks between them, the first
    /// figure, than [`max_passes`] allows, the second.
    TooManyPasses(u64, u64),
    /// A segment whose length or contents are not what JPEG defines.
    Malformed(&'static str),
    /// A coding process no decoder here supports.
    Unsupported(&'static str),
}

impl Partial {
    pub fn describe(self) -> &'static str {
        match self {
            Partial::Cut => "truncated (the file ends before its last part)",
            Partial::ShortScan => "truncated (a scan ends before its last block)",
            Partial::MissingScans => "truncated (its scans leave part of the image unsent)",
            Partial::StrayMarker => "a marker that belongs inside a scan stands between segments",
            Partial::BadCode => "a scan uses a Huffman code its tables do not define",
            Partial::NoMemory(_) => "out of memory",
            Partial::TooManyPixels(_) => "over the pixel limit",
            Partial::TooManyScans(_) => "too many scans",
            Partial::TooManyPasses(..) => "scans covering too many blocks",
            Partial::Malformed(what) | Partial::Unsupported(what) => what,
        }
    }
}

/// A JPEG as the walk read it.
pub struct Walked {
    pub frame: JpegFrame,
    /// Where the first EXIF segment's TIFF data is, if there is one.
    pub exif: Option<Range<usize>>,
    /// The segments the decoders need, in order: a marker, its contents,
    /// and after a start-of-scan its entropy-coded data.
    pieces: Vec<(u8, Range<usize>, Range<usize>)>,
}

impl Walked {
    /// `data` as the decoders are given it: the start marker, the segments
    /// the walk checked and the decoders need (frame, tables, restart
    /// interval, Adobe's colour transform, scans with their data), each with
    /// the length the walk honoured, and the end marker. No bytes between
    /// segments, no segment the walk did not read.
    pub fn canonical(&self, data: &[u8]) -> Result<Vec<u8>, Partial> {
        let len: usize = 4 + self
            .pieces
            .iter()
            .map(|(_, segment, entropy)| 4 + segment.len() + entropy.len())
            .sum::<usize>();
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Partial::NoMemory(len))?;
        out.extend_from_slice(&[0xFF, 0xD8]);
        for (marker, segment, entropy) in &self.pieces {
            // Lengths were read from two bytes, so they fit in two.
            let length = (segment.len() + 2) as u16;
            out.extend_from_slice(&[0xFF, *marker]);
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&data[segment.clone()]);
            out.extend_from_slice(&data[entropy.clone()]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        Ok(out)
    }
}

/// Walks `data` to its end-of-image marker. Stray bytes between segments
/// are skipped, as libjpeg does, and data after the end (camera trailers)
/// is not looked at. A frame of more than `max_pixels` ends the walk, before
/// anything is allocated for it. Without `entropy`, for files pg_avatar
/// wrote itself, the scans' codes are not walked: that is a third of the
/// time of decoding them. `checkpoint` is called between scans and every
/// few thousand blocks, so a long walk can be cancelled.
pub fn walk(
    data: &[u8],
    max_pixels: u64,
    entropy: bool,
    checkpoint: &dyn Fn(),
) -> Result<Walked, Partial> {
    if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(Partial::Cut);
    }
    let mut state = State {
        entropy,
        max_passes: max_passes(max_pixels),
        ..State::default()
    };
    let mut walked = Walked {
        frame: JpegFrame::default(),
        exif: None,
        pieces: Vec::new(),
    };
    let mut adobe = false;
    let mut i = 2;
    let mut segments = 0u32;
    loop {
        segments = segments.wrapping_add(1);
        if segments.is_multiple_of(4096) {
            checkpoint();
        }
        i += find(data, i, |b| b == 0xFF)?;
        i += find(data, i, |b| b != 0xFF)?;
        let marker = data[i];
        i += 1;
        match marker {
            0xD9 => {
                walked.frame = state.finish()?;
                return Ok(walked);
            }
            0x00 | 0x01 | 0xD0..=0xD7 => return Err(Partial::StrayMarker),
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([
            *data.get(i).ok_or(Partial::Cut)?,
            *data.get(i + 1).ok_or(Partial::Cut)?,
        ]));
        if len < 2 {
            return Err(Partial::Cut);
        }
        let at = i + 2..i + len;
        let segment = data.get(at.clone()).ok_or(Partial::Cut)?;
        i += len;
        let mut kept = true;
        let mut scan = i..i;
        match marker {
            0xC0..=0xC2 => {
                state.frame(marker, segment)?;
                let frame = state.frame;
                if u64::from(frame.width) * u64::from(frame.height) > max_pixels {
                    return Err(Partial::TooManyPixels(frame));
                }
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(Partial::Unsupported(
                    "an arithmetic-coded, lossless or hierarchical JPEG",
                ))
            }
            0xC4 => state.tables(segment)?,
            0xDB => quantisation_tables(segment)?,
            0xDD => {
                if segment.len() != 2 {
                    return Err(Partial::Malformed("a restart interval of the wrong length"));
                }
                state.restart_interval = be16(segment);
            }
            0xDA => {
                // The entropy-coded data runs to the first marker that is
                // neither a stuffed zero nor a restart.
                let start = i;
                loop {
                    i += find(data, i, |b| b == 0xFF)?;
                    let after = i + find(data, i, |b| b != 0xFF)?;
                    match data[after] {
                        // Fill bytes belong only before a marker that ends
                        // a scan: before a stuffed zero or a restart, one
                        // reader counts them as data and another skips them.
                        0x00 | 0xD0..=0xD7 if after > i + 1 => {
                            return Err(Partial::Malformed("fill bytes inside a scan"))
                        }
                        0x00 | 0xD0..=0xD7 => i = after + 1,
                        _ => break,
                    }
                }
                checkpoint();
                state.scan(segment, &data[start..i], checkpoint)?;
                scan = start..i;
            }
            // Adobe's: whether four components are CMYK or YCCK.
            0xEE if !adobe && segment.starts_with(b"Adobe") && segment.len() >= 12 => adobe = true,
            0xE1 => {
                kept = false;
                if walked.exif.is_none() && segment.starts_with(b"Exif\0\0") {
                    walked.exif = Some(at.start + 6..at.end);
                }
            }
            _ => kept = false,
        }
        if kept {
            if walked.pieces.len() >= MAX_SEGMENTS {
                return Err(Partial::Malformed(
                    "more table and scan segments than any encoder writes",
                ));
            }
            walked.pieces.push((marker, at, scan));
        }
    }
}

/// A DQT segment holds whole tables and nothing else: a decoder reads them
/// by their contents, not by the segment's length.
fn quantisation_tables(mut segment: &[u8]) -> Result<(), Partial> {
    if segment.is_empty() {
        return Err(Partial::Malformed("a quantisation segment of no tables"));
    }
    while let Some((&which, rest)) = segment.split_first() {
        let (precision, slot) = (which >> 4, which & 0x0F);
        if precision > 1 || slot > 3 {
            return Err(Partial::Malformed("a quantisation table of no known kind"));
        }
        let size = 64 * (usize::from(precision) + 1);
        segment = rest.get(size..).ok_or(Partial::Malformed(
            "a quantisation table longer than its segment",
        ))?;
    }
    Ok(())
}

fn find(data: &[u8], from: usize, what: impl Fn(u8) -> bool) -> Result<usize, Partial> {
    data.get(from..)
        .and_then(|rest| rest.iter().position(|&b| what(b)))
        .ok_or(Partial::Cut)
}

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// One frame component: its id, and its sampling factors.
#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: u8,
    v: u8,
}

#[derive(Default)]
struct State {
    /// Whether scans' codes are walked.
    entropy: bool,
    max_passes: u64,
    frame: JpegFrame,
    /// The coding process, by SOF marker, once a frame header is read.
    sof: Option<u8>,
    ids: [Component; 4],
    /// DC then AC tables, by destination.
    huffman: [[Option<Huffman>; 4]; 2],
    restart_interval: u16,
    /// Per component, the coefficients sent at full precision, as a bit
    /// per zig-zag index (all at once in a sequential scan).
    precise: [u64; 4],
    /// Progressive: per component and block, its AC values non-zero so
    /// far, as a bit per zig-zag index. 8 bytes a block, at most a quarter
    /// of a byte a pixel in each component.
    history: [Vec<u64>; 4],
}

impl State {
    fn frame(&mut self, marker: u8, segment: &[u8]) -> Result<(), Partial> {
        if self.sof.is_some() {
            return Err(Partial::Malformed("two frame headers"));
        }
        let count = usize::from(*segment.get(5).ok_or(Partial::Cut)?);
        if !(1..=4).contains(&count) || segment.len() != 6 + 3 * count {
            return Err(Partial::Malformed("a frame header of the wrong length"));
        }
        self.sof = Some(marker);
        self.frame.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
        self.frame.height = be16(&segment[1..]);
        self.frame.width = be16(&segment[3..]);
        self.frame.components = segment[5];
        for (i, component) in self.ids.iter_mut().enumerate() {
            let at = 6 + 3 * i;
            let factors = segment.get(at + 1).copied().unwrap_or(0x11);
            *component = Component {
                id: segment.get(at).copied().unwrap_or(0),
                h: factors >> 4,
                v: factors & 0x0F,
            };
            self.frame.sampling[i] = (component.h, component.v);
        }
        let ids = &self.ids[..count];
        if (1..count).any(|i| ids[..i].iter().any(|c| c.id == ids[i].id)) {
            return Err(Partial::Malformed("two frame components of one id"));
        }
        if !sampling_decodes(&self.frame.sampling[..count]) {
            return Err(Partial::Unsupported(
                "a JPEG sampled in a way no encoder writes",
            ));
        }
        Ok(())
    }

    fn tables(&mut self, mut segment: &[u8]) -> Result<(), Partial> {
        if segment.is_empty() {
            return Err(Partial::Malformed("a Huffman segment of no tables"));
        }
        // One table per class and destination is all a segment can mean;
        // more is work for every reader, and only an attacker writes it.
        for defined in 0.. {
            let Some((&which, rest)) = segment.split_first() else {
                break;
            };
            if defined == 8 {
                return Err(Partial::Malformed(
                    "a Huffman segment of more than eight tables",
                ));
            }
            let counts: [u8; 16] = rest
                .get(..16)
                .and_then(|c| c.try_into().ok())
                .ok_or(Partial::BadCode)?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = rest.get(16..16 + total).ok_or(Partial::BadCode)?;
            let (class, slot) = (usize::from(which >> 4), usize::from(which & 0x0F));
            if class > 1 || slot > 3 {
                return Err(Partial::BadCode);
            }
            self.huffman[class][slot] = Some(Huffman::new(&counts, symbols)?);
            segment = &rest[16 + total..];
        }
        Ok(())
    }

    fn scan(
        &mut self,
        header: &[u8],
        entropy: &[u8],
        checkpoint: &dyn Fn(),
    ) -> Result<(), Partial> {
        self.frame.scans = self.frame.scans.saturating_add(1);
        if self.frame.scans > MAX_SCANS {
            return Err(Partial::TooManyScans(self.frame.scans));
        }
        let Some(sof) = self.sof else {
            return Err(Partial::MissingScans);
        };
        let count = usize::from(*header.first().ok_or(Partial::Cut)?);
        if !(1..=4).contains(&count) || header.len() != 4 + 2 * count {
            return Err(Partial::Malformed("a scan header of the wrong length"));
        }
        let selectors = &header[1..1 + 2 * count];
        let spectral = &header[1 + 2 * count..];
        let (start, end) = (spectral[0], spectral[1]);
        let (high, low) = (spectral[2] >> 4, spectral[2] & 0x0F);
        let frame_components = usize::from(self.frame.components.min(4));
        let mut members = Vec::with_capacity(count);
        for pair in selectors.chunks_exact(2) {
            let index = self.ids[..frame_components]
                .iter()
                .position(|c| c.id == pair[0])
                .ok_or(Partial::MissingScans)?;
            if members.iter().any(|&(m, _, _)| m == index) {
                return Err(Partial::Malformed("a scan of one component twice"));
            }
            // Tables have four destinations in each class.
            if pair[1] >> 4 > 3 || pair[1] & 0x0F > 3 {
                return Err(Partial::BadCode);
            }
            members.push((
                index,
                usize::from(pair[1] >> 4),
                usize::from(pair[1] & 0x0F),
            ));
        }
        if self.frame.scans == 1 {
            self.frame.split = !self.frame.progressive && count < frame_components;
            // Decoded a scan at a time, such a frame must have its first
            // component at full resolution, or zune-jpeg misreads it.
            let full = max_sampling(self.frame.component_sampling());
            if self.frame.holds_coefficients() && self.frame.sampling[0] != full {
                return Err(Partial::Unsupported(
                    "a JPEG in scans whose first component is sampled below another",
                ));
            }
        }
        let coding = match sof {
            // Huffman-coded, sequential: every block's codes must be there.
            0xC0 | 0xC1 => {
                for &(index, _, _) in &members {
                    self.precise[index] = u64::MAX;
                }
                Coding::Sequential
            }
            0xC2 => {
                // What JPEG allows a progressive scan (G.1.1.1.1): DC alone,
                // or one component's band of AC; each refinement one bit.
                let band_ok = if start == 0 {
                    end == 0
                } else {
                    count == 1 && start <= end && end < 64
                };
                if !band_ok || (high != 0 && high != low + 1) || low > 13 {
                    return Err(Partial::Malformed(
                        "a progressive scan JPEG does not define",
                    ));
                }
                if low == 0 {
                    let band = (u64::MAX >> (63 - (end - start))) << start;
                    for &(index, _, _) in &members {
                        self.precise[index] |= band;
                    }
                }
                match (start, high) {
                    (0, 0) => Coding::DcFirst { low },
                    (0, _) => Coding::DcRefine,
                    (_, 0) => Coding::AcFirst { start, end },
                    _ => Coding::AcRefine { start, end },
                }
            }
            // Arithmetic coding, lossless and hierarchical processes: no
            // decoder here supports them, and each refuses the file itself.
            _ => return Ok(()),
        };
        let Some(layout) = self.layout(&members) else {
            return Ok(());
        };
        let blocks: u64 = layout
            .per_unit
            .iter()
            .map(|&(_, _, count)| u64::from(count))
            .sum();
        self.frame.passes = self.frame.passes.saturating_add(layout.units * blocks);
        if self.frame.passes > self.max_passes {
            return Err(Partial::TooManyPasses(self.frame.passes, self.max_passes));
        }
        if !self.entropy {
            return Ok(());
        }
        self.walk_scan(&members, layout, entropy, coding, checkpoint)
    }

    /// A scan's MCUs, and for each member its tables and blocks per MCU;
    /// `None` while the frame has no height (DNL, which decoders refuse).
    fn layout(&self, members: &[(usize, usize, usize)]) -> Option<Layout> {
        let frame_components = usize::from(self.frame.components.min(4));
        let sampling: Vec<(u8, u8)> = self.ids[..frame_components]
            .iter()
            .map(|c| (c.h, c.v))
            .collect();
        let (max_h, max_v) = max_sampling(&sampling);
        let (width, height) = (u32::from(self.frame.width), u32::from(self.frame.height));
        if width == 0 || height == 0 {
            return None;
        }
        // A scan of one component covers its own blocks, one per unit;
        // an interleaved one whole MCUs.
        if let [(index, dc, ac)] = members {
            let (h, v) = sampling[*index];
            let units = blocks(width, h, max_h) * blocks(height, v, max_v);
            return Some(Layout {
                units,
                per_unit: vec![(*dc, *ac, 1)],
            });
        }
        let units = u64::from(width).div_ceil(8 * u64::from(max_h))
            * u64::from(height).div_ceil(8 * u64::from(max_v));
        let per_unit = members
            .iter()
            .map(|&(index, dc, ac)| {
                let (h, v) = sampling[index];
                (dc, ac, u32::from(h) * u32::from(v))
            })
            .collect();
        Some(Layout { units, per_unit })
    }

    /// The walk's end, at the end-of-image marker.
    fn finish(&self) -> Result<JpegFrame, Partial> {
        if matches!(self.sof, Some(0xC0..=0xC2)) {
            let components = usize::from(self.frame.components.min(4));
            if self.precise[..components]
                .iter()
                .any(|&sent| sent != u64::MAX)
            {
                return Err(Partial::MissingScans);
            }
        }
        Ok(self.frame)
    }

    /// Walks a scan's codes, block by block, interval by interval between
    /// restart markers.
    fn walk_scan(
        &mut self,
        members: &[(usize, usize, usize)],
        Layout { units, per_unit }: Layout,
        entropy: &[u8],
        coding: Coding,
        checkpoint: &dyn Fn(),
    ) -> Result<(), Partial> {
        // An AC scan has one component, whose blocks are in raster order:
        // which of their coefficients are non-zero so far decides how a
        // refinement of them is read.
        let mut history: &mut [u64] = &mut [];
        if let (Coding::AcFirst { .. } | Coding::AcRefine { .. }, [(index, _, _)]) =
            (coding, members)
        {
            let kept = &mut self.history[*index];
            if kept.is_empty() {
                let len = usize::try_from(units).map_err(|_| Partial::NoMemory(usize::MAX))?;
                kept.try_reserve_exact(len)
                    .map_err(|_| Partial::NoMemory(len.saturating_mul(8)))?;
                kept.resize(len, 0);
            }
            history = kept.as_mut_slice();
        }
        let huffman = &self.huffman;
        let table = |class: usize, slot: usize| {
            huffman[class]
                .get(slot)
                .and_then(Option::as_ref)
                .ok_or(Partial::BadCode)
        };
        // Only the tables the scan's coding reads need be defined.
        let (dc_used, ac_used) = match coding {
            Coding::Sequential => (true, true),
            Coding::DcFirst { .. } => (true, false),
            Coding::DcRefine => (false, false),
            Coding::AcFirst { .. } | Coding::AcRefine { .. } => (false, true),
        };
        let tables = per_unit
            .iter()
            .map(|&(dc, ac, count)| {
                let dc = if dc_used { Some(table(0, dc)?) } else { None };
                let ac = if ac_used { Some(table(1, ac)?) } else { None };
                Ok((dc, ac, count))
            })
            .collect::<Result<Vec<_>, Partial>>()?;
        let interval = match u64::from(self.restart_interval) {
            0 => units,
            n => n,
        };
        let mut intervals = Intervals(entropy);
        let (mut left, mut unit) = (units, 0usize);
        let mut spare = 0u64;
        while left > 0 {
            let mut bits = Bits::new(intervals.next().ok_or(Partial::ShortScan)?);
            let mut eob_run = 0;
            // Each member's DC predictor, reset at every restart.
            let mut predictors = [0i32; 4];
            for _ in 0..interval.min(left) {
                for (&(dc, ac, count), predictor) in tables.iter().zip(&mut predictors) {
                    for _ in 0..count {
                        let nonzero = history.get_mut(unit).unwrap_or(&mut spare);
                        // Past the end, the padding's ones are no code.
                        coding
                            .block(&mut bits, dc, ac, &mut eob_run, nonzero, predictor)
                            .map_err(|e| match bits.over {
                                0 => e,
                                _ => Partial::ShortScan,
                            })?;
                    }
                }
                unit += 1;
                if unit % 4096 == 0 {
                    checkpoint();
                }
            }
            left -= interval.min(left);
        }
        Ok(())
    }
}

/// A scan's coding units (MCUs, or one component's blocks), and for each
/// member its DC and AC table and how many blocks it has in a unit.
struct Layout {
    units: u64,
    per_unit: Vec<(usize, usize, u32)>,
}

/// What a scan codes, and so how each of its blocks is read.
#[derive(Clone, Copy)]
enum Coding {
    /// The DC difference, then run-length coded AC values.
    Sequential,
    /// The DC difference alone, of the high bits.
    DcFirst { low: u8 },
    /// One more bit of each DC value.
    DcRefine,
    /// A band of AC values, of the high bits; a run of blocks may end at once.
    AcFirst { start: u8, end: u8 },
    /// One more bit of each non-zero AC value of a band, and the values
    /// that become non-zero with it.
    AcRefine { start: u8, end: u8 },
}

impl Coding {
    fn block(
        self,
        bits: &mut Bits<'_>,
        dc: Option<&Huffman>,
        ac: Option<&Huffman>,
        eob_run: &mut u32,
        nonzero: &mut u64,
        predictor: &mut i32,
    ) -> Result<(), Partial> {
        fn table(t: Option<&Huffman>) -> Result<&Huffman, Partial> {
            t.ok_or(Partial::BadCode)
        }
        match self {
            Coding::Sequential => {
                dc_difference(bits, table(dc)?, predictor, 0)?;
                ac_values(bits, table(ac)?, 1, 63, None, nonzero)
            }
            Coding::DcFirst { low } => dc_difference(bits, table(dc)?, predictor, low),
            Coding::DcRefine => bits.skip(1),
            Coding::AcFirst { start, end } => {
                ac_values(bits, table(ac)?, start, end, Some(eob_run), nonzero)
            }
            Coding::AcRefine { start, end } => {
                ac_refinement(bits, table(ac)?, start, end, eob_run, nonzero)
            }
        }
    }
}

/// The DC difference, added to its component's predictor. A DC value
/// stays within 16 bits however it is shifted: decoders multiply it by a
/// quantiser of up to 16 bits in 32-bit arithmetic (zune-jpeg's overflows,
/// which its debug build checks), and no image's DC comes near.
fn dc_difference(
    bits: &mut Bits<'_>,
    dc: &Huffman,
    predictor: &mut i32,
    low: u8,
) -> Result<(), Partial> {
    let size = u32::from(dc.decode(bits)?);
    if size > 15 {
        return Err(Partial::BadCode);
    }
    let raw = bits.read(size)? as i32;
    let difference = match size {
        0 => 0,
        _ if raw < 1 << (size - 1) => raw - (1 << size) + 1,
        _ => raw,
    };
    *predictor += difference;
    if !(-32768..=32767).contains(&(i64::from(*predictor) << low)) {
        return Err(Partial::Malformed("a DC value no image has"));
    }
    Ok(())
}

/// Run-length coded AC values from `start` to `end`, each non-zero one
/// marked in `nonzero`. In a sequential scan an end-of-block ends this
/// block only; in a progressive one it may end a run of blocks, counted in
/// `eob_run`.
fn ac_values(
    bits: &mut Bits<'_>,
    ac: &Huffman,
    start: u8,
    end: u8,
    mut eob_run: Option<&mut u32>,
    nonzero: &mut u64,
) -> Result<(), Partial> {
    if let Some(run) = eob_run.as_deref_mut().filter(|run| **run > 0) {
        *run -= 1;
        return Ok(());
    }
    let mut k = u32::from(start);
    while k <= u32::from(end) {
        let rs = ac.decode(bits)?;
        let (run, size) = (u32::from(rs >> 4), u32::from(rs & 0x0F));
        if size == 0 {
            if run != 15 {
                // EOBn: this block and 2^n - 1 + (n more bits) after it.
                if let (Some(eob_run), true) = (eob_run, run > 0) {
                    *eob_run = (1 << run) - 1 + bits.read(run)?;
                }
                break;
            }
            k += 16;
        } else {
            k += run;
            if k < 64 {
                *nonzero |= 1 << k;
            }
            k += 1;
            bits.skip(size)?;
        }
    }
    Ok(())
}

/// A refinement of the AC values from `start` to `end` (JPEG G.1.2.3, as
/// libjpeg reads it): a correction bit for each value already non-zero,
/// and new values of magnitude one, each placed after as many zero values
/// as its code's run says.
fn ac_refinement(
    bits: &mut Bits<'_>,
    ac: &Huffman,
    start: u8,
    end: u8,
    eob_run: &mut u32,
    nonzero: &mut u64,
) -> Result<(), Partial> {
    let (mut k, end) = (u32::from(start), u32::from(end).min(63));
    let known = |nonzero: u64, k: u32| nonzero >> k & 1 == 1;
    if *eob_run == 0 {
        while k <= end {
            let rs = ac.decode(bits)?;
            let (mut run, size) = (i32::from(rs >> 4), rs & 0x0F);
            if size == 0 && run != 15 {
                *eob_run = (1 << run) + bits.read(run as u32)?;
                break;
            }
            if size != 0 {
                // The new value's sign.
                bits.skip(1)?;
            }
            while k <= end {
                if known(*nonzero, k) {
                    bits.skip(1)?;
                } else {
                    run -= 1;
                    if run < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if size != 0 && k <= end {
                *nonzero |= 1 << k;
            }
            k += 1;
        }
    }
    if *eob_run > 0 {
        // The rest of the band of a block in an end-of-band run: a
        // correction bit for each value already non-zero.
        if k <= end {
            let rest = (u64::MAX >> (63 - (end - k))) << k;
            let mut corrections = (*nonzero & rest).count_ones();
            while corrections > 0 {
                let n = corrections.min(32);
                bits.skip(n)?;
                corrections -= n;
            }
        }
        *eob_run -= 1;
    }
    Ok(())
}

/// Splits entropy-coded data at its restart markers.
struct Intervals<'a>(&'a [u8]);

impl<'a> Iterator for Intervals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let data = self.0;
        if data.is_empty() {
            return None;
        }
        let mut i = 0;
        while i + 1 < data.len() {
            if data[i] == 0xFF && matches!(data[i + 1], 0xD0..=0xD7) {
                self.0 = &data[i + 2..];
                return Some(&data[..i]);
            }
            i += 1;
        }
        self.0 = &[];
        Some(data)
    }
}

/// Bits of entropy-coded data, with stuffed zeros removed. Past the end it
/// reads ones, as the padding does, and remembers that it ran out.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    buffer: u64,
    count: u32,
    /// Bits read past the end of the data.
    over: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            at: 0,
            buffer: 0,
            count: 0,
            over: 0,
        }
    }

    fn fill(&mut self) {
        while self.count <= 56 {
            let byte = match self.data.get(self.at) {
                Some(&0xFF) => {
                    // A stuffed zero follows a data byte of 0xFF.
                    self.at += 2;
                    0xFF
                }
                Some(&b) => {
                    self.at += 1;
                    b
                }
                None => {
                    self.over += 8;
                    0xFF
                }
            };
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    fn peek(&mut self, n: u32) -> u32 {
        self.fill();
        (self.buffer >> (64 - n)) as u32
    }

    fn read(&mut self, n: u32) -> Result<u32, Partial> {
        if n == 0 {
            return Ok(0);
        }
        let value = self.peek(n);
        self.skip(n)?;
        Ok(value)
    }

    fn skip(&mut self, n: u32) -> Result<(), Partial> {
        if n == 0 {
            return Ok(());
        }
        self.fill();
        self.buffer <<= n;
        self.count -= n;
        // Padding bits read from past the end that a code has used.
        if self.over > self.count {
            return Err(Partial::ShortScan);
        }
        Ok(())
    }
}

/// A Huffman table as JPEG defines it (Annex C): codes by length, assigned
/// in order, looked up through the first 9 bits, the longest after that.
struct Huffman {
    /// By the next 9 bits: the symbol and its code's length, if that short.
    fast: Box<[(u8, u8); 512]>,
    /// By length: the largest code of that length (+1), and where its
    /// symbols start, for codes longer than 9 bits.
    max_code: [u32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Huffman, Partial> {
        let mut fast = Box::new([(0u8, 0u8); 512]);
        let (mut max_code, mut offset) = ([0u32; 17], [0i32; 17]);
        let (mut code, mut k) = (0u32, 0usize);
        for length in 1..=16u32 {
            let count = usize::from(counts[length as usize - 1]);
            offset[length as usize] = k as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << length {
                    return Err(Partial::BadCode);
                }
                if length <= 9 {
                    let spread = 9 - length;
                    for low in 0..1u32 << spread {
                        fast[((code << spread) | low) as usize] = (symbols[k], length as u8);
                    }
                }
                code += 1;
                k += 1;
            }
            max_code[length as usize] = code;
            code <<= 1;
        }
        Ok(Huffman {
            fast,
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u8, Partial> {
        let (symbol, length) = self.fast[bits.peek(9) as usize];
        if length > 0 {
            bits.skip(u32::from(length))?;
            return Ok(symbol);
        }
        for length in 10..=16u32 {
            let code = bits.peek(length);
            if code < self.max_code[length as usize] {
                bits.skip(length)?;
                let at = self.offset[length as usize] + code as i32;
                return usize::try_from(at)
                    .ok()
                    .and_then(|at| self.symbols.get(at).copied())
                    .ok_or(Partial::BadCode);
            }
        }
        Err(Partial::BadCode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    /// JPEGs of every kind the walk must read to the end: samplings,
    /// restart intervals, optimised tables, grey and CMYK, progressive.
    fn encoded() -> Vec<(String, Vec<u8>)> {
        let (w, h) = (77u16, 45u16);
        let rgb = samples::photo(u32::from(w), u32::from(h)).into_raw();
        let grey: Vec<u8> = rgb.chunks(3).map(|p| p[1]).collect();
        let cmyk: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], 30]).collect();
        let mut out = Vec::new();
        for sampling in [
            SamplingFactor::F_1_1,
            SamplingFactor::F_2_1,
            SamplingFactor::F_1_2,
            SamplingFactor::F_2_2,
            SamplingFactor::F_4_1,
        ] {
            for (restart, optimised, progressive) in [
                (0, false, false),
                (3, false, false),
                (0, true, false),
                (5, true, false),
                (0, false, true),
            ] {
                // jpeg-encoder's optimised tables panic for some samplings.
                if optimised && !matches!(sampling, SamplingFactor::F_1_1 | SamplingFactor::F_2_2) {
                    continue;
                }
                let mut jpeg = Vec::new();
                let mut encoder = Encoder::new(&mut jpeg, 85);
                encoder.set_sampling_factor(sampling);
                encoder.set_restart_interval(restart);
                encoder.set_optimized_huffman_tables(optimised);
                encoder.set_progressive(progressive);
                encoder.encode(&rgb, w, h, ColorType::Rgb).unwrap();
                let name = format!("{sampling:?} restart {restart} optimised {optimised} progressive {progressive}");
                out.push((name, jpeg));
            }
        }
        for (name, pixels, colour) in [
            ("grey", &grey, ColorType::Luma),
            ("CMYK", &cmyk, ColorType::Cmyk),
        ] {
            let mut jpeg = Vec::new();
            Encoder::new(&mut jpeg, 85)
                .encode(pixels, w, h, colour)
                .unwrap();
            out.push((name.into(), jpeg));
        }
        let image = image::DynamicImage::ImageRgb8(samples::photo(300, 200));
        out.push((
            "the image crate's".into(),
            samples::encode(&image, image::ImageFormat::Jpeg),
        ));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libjpeg");
        for entry in std::fs::read_dir(&dir).expect("tests/libjpeg") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jpg") {
                let name = format!("libjpeg-turbo's {}", path.display());
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
        out
    }

    #[test]
    fn whole_files_of_every_kind_are_read_to_their_end() {
        for (name, jpeg) in encoded() {
            let frame = walk(&jpeg, u64::MAX, true, &|| {})
                .map(|w| w.frame)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(frame.width > 0 && frame.scans > 0, "{name}");
        }
    }

    /// Cut anywhere inside its scans and closed again with an end marker,
    /// as a browser would still show it: the blocks after the cut are not
    /// there, so the file is partial.
    #[test]
    fn a_scan_cut_and_closed_again_is_partial() {
        for (name, jpeg) in encoded() {
            let scans = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
            let end = jpeg.len() - 2;
            let step = ((end - scans) / 40).max(1);
            for cut in (scans + 4..end - 1).step_by(step) {
                let mut closed = jpeg[..cut].to_vec();
                closed.extend_from_slice(&[0xFF, 0xD9]);
                assert!(
                    walk(&closed, u64::MAX, true, &|| {})
                        .map(|w| w.frame)
                        .is_err(),
                    "{name}: cut at {cut} of {} and closed again",
                    jpeg.len()
                );
            }
        }
    }

    #[test]
    fn a_progressive_file_without_its_last_scans_is_partial() {
        let jpeg = samples::progressive_jpeg_with_scans(&samples::photo(64, 48), 0);
        let scans: Vec<usize> = (0..jpeg.len() - 1)
            .filter(|&i| jpeg[i..i + 2] == [0xFF, 0xDA])
            .collect();
        assert!(scans.len() > 2);
        for &next in &scans[1..] {
            let mut closed = jpeg[..next].to_vec();
            closed.extend_from_slice(&[0xFF, 0xD9]);
            assert_eq!(
                walk(&closed, u64::MAX, true, &|| {}).map(|w| w.frame),
                Err(Partial::MissingScans),
                "closed before the scan at {next}"
            );
        }
    }

    /// A frame header behind a segment a decoder misreads: zune-jpeg reads
    /// five bytes of any APP0 longer than five, one past an APP0 of six, and
    /// skipped the frame header that followed as stray bytes.
    #[test]
    fn a_frame_header_is_a_frame_header_wherever_it_stands() {
        let (_, jpeg) = encoded().remove(0);
        let mut hidden = jpeg[..2].to_vec();
        hidden.extend_from_slice(b"\xFF\xE0\x00\x06JFIF");
        hidden.extend_from_slice(&[0xFF, 0xC9, 0, 11, 8, 0, 45, 0, 77, 1, 1, 0x11, 0]);
        hidden.extend_from_slice(&jpeg[2..]);
        assert!(matches!(
            walk(&hidden, u64::MAX, true, &|| {}),
            Err(Partial::Unsupported(_))
        ));
        let mut twice = jpeg[..2].to_vec();
        let sof = (0..jpeg.len() - 1)
            .find(|&i| jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0)
            .unwrap();
        let len = usize::from(be16(&jpeg[sof + 2..]));
        twice.extend_from_slice(&jpeg[sof..sof + 2 + len]);
        twice.extend_from_slice(&jpeg[2..]);
        assert_eq!(
            walk(&twice, u64::MAX, true, &|| {}).err(),
            Some(Partial::Malformed("two frame headers"))
        );
    }

    /// The decoders get the segments the walk read and nothing else: what
    /// stood between them, or in segments they do not need, is gone, and
    /// the pixels are the same.
    #[test]
    fn the_canonical_file_is_what_the_walk_read() {
        for (name, jpeg) in encoded() {
            let mut noisy = jpeg[..2].to_vec();
            noisy.extend_from_slice(b"\xFF\xFE\x00\x07hello");
            noisy.extend_from_slice(b"\xFF\xE0\x00\x06JFIF");
            noisy.extend_from_slice(b"stray");
            noisy.extend_from_slice(&jpeg[2..]);
            let walked = walk(&noisy, u64::MAX, true, &|| {}).unwrap();
            let canonical = walked.canonical(&noisy).unwrap();
            assert!(
                !canonical.windows(4).any(|w| w == b"JFIF" || w == b"hell"),
                "{name}"
            );
            let again = walk(&canonical, u64::MAX, true, &|| {})
                .unwrap()
                .canonical(&canonical)
                .unwrap();
            assert_eq!(
                again, canonical,
                "{name}: canonical twice is canonical once"
            );
            let decode = |file: &[u8]| {
                image::load_from_memory(file)
                    .map(|i| i.to_rgb8().into_raw())
                    .ok()
            };
            assert_eq!(decode(&canonical), decode(&jpeg), "{name}");
        }
    }

    /// Past a hundred scans the walk stops, whatever they hold, and a long
    /// walk checks in between its blocks.
    #[test]
    fn scans_are_counted_and_the_walk_checks_in() {
        let bomb = samples::refinement_bomb(512, MAX_SCANS);
        assert_eq!(
            walk(&bomb, u64::MAX, true, &|| {}).err(),
            Some(Partial::TooManyScans(MAX_SCANS + 1))
        );
        // A file at the pixel limit may pass over its blocks sixteen times,
        // not a hundred; an encoder's progressive file passes far fewer.
        let at_limit = |file: &[u8], pixels| walk(file, pixels, true, &|| {}).map(|w| w.frame);
        let (side, limit) = (2048, 2048 * 2048);
        let bomb = samples::refinement_bomb(side, 16);
        assert_eq!(
            at_limit(&bomb, limit).err(),
            Some(Partial::TooManyPasses(17 * 256 * 256, limit / 4))
        );
        assert_eq!(
            at_limit(&samples::refinement_bomb(side, 14), limit)
                .unwrap()
                .passes,
            16 * 256 * 256
        );
        for (name, jpeg) in encoded() {
            let frame = walk(&jpeg, u64::MAX, true, &|| {}).unwrap().frame;
            let luma = blocks(frame.width.into(), 1, 1) * blocks(frame.height.into(), 1, 1);
            // Scaled up to the largest it is accepted at: the limit, or a
            // quarter of it for a progressive file of several components
            // at full resolution (libjpeg's CMYK makes 24 passes).
            let full = !frame.subsampled();
            let quarter = frame.progressive && frame.components > 1 && full;
            let allowed = if quarter { 64 } else { 16 };
            assert!(frame.passes <= allowed * luma, "{name}: {frame:?}");
        }
        let calls = std::cell::Cell::new(0);
        let file = samples::refinement_bomb(2048, 10);
        walk(&file, u64::MAX, true, &|| calls.set(calls.get() + 1)).unwrap();
        assert!(calls.get() > 12 * 16, "{} calls", calls.get());
    }

    /// Sampling factors as cameras and encoders write them decode; others
    /// made zune-jpeg index out of its buffers, and are refused.
    #[test]
    fn only_samplings_the_decoders_upsample_are_read() {
        let cases: &[(&[(u8, u8)], bool)] = &[
            (&[(1, 1)], true),
            (&[(1, 1), (1, 1), (1, 1)], true),
            (&[(2, 2), (1, 1), (1, 1)], true),
            (&[(2, 1), (1, 1), (1, 1)], true),
            (&[(1, 2), (1, 1), (1, 1)], true),
            (&[(4, 1), (1, 1), (1, 1)], true),
            (&[(4, 2), (2, 2), (2, 2)], true),
            (&[(2, 2), (1, 1), (1, 1), (2, 2)], true),
            (&[(1, 1), (1, 1), (1, 1), (2, 2)], true),
            (&[(1, 1), (2, 2), (1, 1)], true),
            (&[(2, 2), (1, 1), (2, 1)], false),
            (&[(1, 1), (2, 2), (2, 1)], false),
            (&[(4, 4), (3, 3), (3, 3)], false),
            (&[(3, 1), (1, 1), (1, 1)], false),
            (&[(4, 2), (4, 1), (1, 1)], false),
            (&[(0, 1), (1, 1), (1, 1)], false),
            (&[(5, 1), (1, 1), (1, 1)], false),
        ];
        for &(sampling, accepted) in cases {
            assert_eq!(sampling_decodes(sampling), accepted, "{sampling:?}");
            let all: Vec<usize> = (0..sampling.len()).collect();
            let file = samples::blank_jpeg(37, 29, sampling, &[&all]);
            let walked = walk(&file, u64::MAX, true, &|| {}).map(|w| w.frame);
            assert_eq!(walked.is_ok(), accepted, "{sampling:?}: {walked:?}");
            let decoded = crate::Pipeline::default().normalise(&file, 2048);
            assert_eq!(decoded.is_ok(), accepted, "{sampling:?}: {decoded:?}");
        }
        // Decoded a scan at a time, the first component must be the
        // largest: Y 1x1 with Cb 2x2, a scan each, panicked zune-jpeg.
        for (sampling, accepted) in [
            ([(2, 2), (1, 1), (1, 1)], true),
            ([(1, 1), (2, 2), (1, 1)], false),
        ] {
            let file = samples::blank_jpeg(37, 29, &sampling, &[&[0], &[1], &[2]]);
            let walked = walk(&file, u64::MAX, true, &|| {}).map(|w| w.frame);
            assert_eq!(walked.is_ok(), accepted, "{sampling:?}: {walked:?}");
            let decoded = crate::Pipeline::default().normalise(&file, 2048);
            assert_eq!(decoded.is_ok(), accepted, "{sampling:?}: {decoded:?}");
        }
    }

    /// A sequential file in scans that each leave a component out makes a
    /// decoder hold every coefficient, as a progressive one does.
    #[test]
    fn a_sequential_file_split_into_scans_holds_its_coefficients() {
        let grey = [(2, 2), (1, 1), (1, 1)];
        let frame = |scans: &[&[usize]]| {
            walk(
                &samples::blank_jpeg(64, 48, &grey, scans),
                u64::MAX,
                true,
                &|| {},
            )
            .unwrap()
            .frame
        };
        assert!(!frame(&[&[0, 1, 2]]).holds_coefficients());
        assert!(frame(&[&[0], &[1], &[2]]).holds_coefficients());
        assert!(frame(&[&[0, 1], &[2]]).holds_coefficients());
    }

    /// What the walk keeps of a file is bounded, whatever the file: empty
    /// table segments, a flood of restart intervals, a table segment of
    /// more tables than there are destinations.
    #[test]
    fn the_walks_record_of_a_file_is_bounded() {
        let jpeg = samples::blank_jpeg(16, 16, &[(1, 1)], &[&[0]]);
        let behind = |segment: &[u8], times: usize| {
            let mut file = jpeg[..2].to_vec();
            for _ in 0..times {
                file.extend_from_slice(segment);
            }
            file.extend_from_slice(&jpeg[2..]);
            file
        };
        let mut tables = vec![0xFF, 0xC4, 0, 0];
        for slot in 0..9u8 {
            tables.extend([((slot % 2) << 4) | (slot / 2 % 4), 1]);
            tables.extend([0u8; 15]);
            tables.push(0);
        }
        let length = (tables.len() - 2) as u16;
        tables[2..4].copy_from_slice(&length.to_be_bytes());
        for (what, file) in [
            ("an empty Huffman segment", behind(&[0xFF, 0xC4, 0, 2], 1)),
            (
                "an empty quantisation segment",
                behind(&[0xFF, 0xDB, 0, 2], 1),
            ),
            ("nine tables in a segment", behind(&tables, 1)),
            (
                "a thousand restart intervals",
                behind(&[0xFF, 0xDD, 0, 4, 0, 0], 1000),
            ),
        ] {
            assert!(
                matches!(
                    walk(&file, u64::MAX, true, &|| {}),
                    Err(Partial::Malformed(_))
                ),
                "{what}"
            );
        }
        assert!(walk(
            &behind(&[0xFF, 0xDD, 0, 4, 0, 0], 100),
            u64::MAX,
            true,
            &|| {}
        )
        .is_ok());
    }

    /// DC differences of the largest size, added up block after block: a
    /// value no image has, which overflowed zune-jpeg's dequantisation.
    #[test]
    fn a_dc_value_past_sixteen_bits_is_refused() {
        let blank = samples::blank_jpeg(128, 8, &[(1, 1)], &[&[0]]);
        let dht = blank.windows(2).position(|w| w == [0xFF, 0xC4]).unwrap();
        let sos = blank.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let scan_data = sos + 2 + usize::from(be16(&blank[sos + 2..]));
        let file = |size: u8| {
            let mut file = blank[..scan_data].to_vec();
            // The DC table's one symbol, after its class, slot and counts.
            file[dht + 4 + 1 + 16] = size;
            // Each of 16 blocks: DC code 0, `size` ones (a difference of
            // 2^size - 1), AC code 0 (end of block); then padding. Sixteen
            // times 2047 is a DC of 32752; twice 32767 is past 16 bits.
            let mut bits = Vec::new();
            for _ in 0..16 {
                bits.push(false);
                bits.extend(std::iter::repeat_n(true, usize::from(size)));
                bits.push(false);
            }
            file.extend(samples::entropy(&bits));
            file.extend([0xFF, 0xD9]);
            file
        };
        assert!(walk(&file(11), u64::MAX, true, &|| {}).is_ok());
        assert_eq!(
            walk(&file(15), u64::MAX, true, &|| {}).err(),
            Some(Partial::Malformed("a DC value no image has"))
        );
        assert_eq!(
            walk(&file(16), u64::MAX, true, &|| {}).err(),
            Some(Partial::BadCode)
        );
    }

    /// Fill bytes before a stuffed zero or a restart marker are data to one
    /// reader and padding to another.
    #[test]
    fn fill_bytes_inside_a_scan_are_refused() {
        let (_, jpeg) = encoded().remove(0);
        let file = samples::with_a_fill_byte_in_a_scan(&jpeg);
        assert_eq!(
            walk(&file, u64::MAX, true, &|| {}).err(),
            Some(Partial::Malformed("fill bytes inside a scan"))
        );
    }

    /// A marker that only belongs in a scan, where a segment should begin:
    /// TEM with a length hiding an end marker (a decoder skips it as a
    /// segment, and decodes the file behind it), a restart marker, a
    /// stuffed zero.
    #[test]
    fn markers_of_scans_between_segments_are_refused() {
        let jpeg = samples::progressive_jpeg_with_scans(&samples::photo(64, 48), 0);
        let insert = |at: usize, bytes: &[u8]| {
            let mut out = jpeg[..at].to_vec();
            out.extend_from_slice(bytes);
            out.extend_from_slice(&jpeg[at..]);
            out
        };
        let second_scan = (3..jpeg.len() - 1)
            .find(|&i| jpeg[i..i + 2] == [0xFF, 0xDA])
            .and_then(|first| (first + 2..jpeg.len() - 1).find(|&i| jpeg[i..i + 2] == [0xFF, 0xDA]))
            .unwrap();
        for (what, file) in [
            (
                "TEM hiding an end",
                insert(2, &[0xFF, 0x01, 0x00, 0x08, 0xFF, 0xD9, 0, 0, 0, 0]),
            ),
            ("TEM after a scan", insert(second_scan, &[0xFF, 0x01])),
            ("a restart marker", insert(2, &[0xFF, 0xD3])),
            ("a stuffed zero", insert(2, &[0xFF, 0x00])),
        ] {
            assert_eq!(
                walk(&file, u64::MAX, true, &|| {}).map(|w| w.frame),
                Err(Partial::StrayMarker),
                "{what}"
            );
        }
    }
}
