//! `render_pixels MASTER SIDE > out.ppm`: the pixels avatar_get would encode
//! for SIDE, through the same mezzanine rule, for scripts/bench.py's PSNR.

use avatar_pipeline::{render_source, Pipeline};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, master, side] = &args[..] else {
        eprintln!("usage: render_pixels MASTER SIDE");
        std::process::exit(2);
    };
    let master = std::fs::read(master).expect("reading the master");
    let side: u32 = side.parse().expect("SIDE is a number");
    let pipeline = Pipeline::default();
    let master_side = image::load_from_memory(&master).expect("a master").width();
    let source = match render_source(side, master_side) {
        Some(mezzanine) => pipeline.render(&master, mezzanine).expect("mezzanine").jpeg,
        None => master,
    };
    let pixels = pipeline.render_pixels(&source, side).expect("rendering");
    let mut out = std::io::stdout().lock();
    write!(out, "P6\n{0} {0}\n255\n", pixels.side).unwrap();
    out.write_all(&pixels.rgb).unwrap();
}
