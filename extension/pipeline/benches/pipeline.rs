//! Each stage of the pipeline on its own, and whole renders with and
//! without shrink-on-load, on a photo-like 2048 px master.
//!
//! `cargo bench -p avatar-pipeline`. Compare ratios within one run: the
//! machine is shared, so absolute times drift.

use std::hint::black_box;

use avatar_pipeline::geometry::centre_square;
use avatar_pipeline::samples;
use avatar_pipeline::{decode, encode, scale, Limits, Pipeline};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use image::{DynamicImage, ImageFormat};

fn master() -> Vec<u8> {
    let upload = samples::encode(
        &DynamicImage::ImageRgb8(samples::photo(2048, 2048)),
        ImageFormat::Png,
    );
    Pipeline::default().normalise(&upload, 2048).unwrap().jpeg
}

/// The render path as it was before shrink-on-load: full decode, resize, encode.
fn render_full_decode(master: &[u8], side: u32) -> Vec<u8> {
    let d = decode::decode(
        master,
        &Limits::default(),
        &|| {},
        None,
        decode::Scrutiny::Stored,
    )
    .unwrap();
    let crop = centre_square(d.width, d.height, d.orientation);
    let rgb = scale::crop_resize(&d.rgb, d.width, d.height, crop.into(), side).unwrap();
    encode::jpeg(&rgb, side, 85).unwrap()
}

fn stages(c: &mut Criterion) {
    let master = master();
    let limits = Limits::default();
    let mut g = c.benchmark_group("stage");
    g.sample_size(20);
    g.bench_function("decode 2048 full", |b| {
        b.iter(|| {
            decode::decode(
                black_box(&master),
                &limits,
                &|| {},
                None,
                decode::Scrutiny::Stored,
            )
        })
    });
    for target in [64, 256] {
        g.bench_function(format!("decode 2048 shrunk for {target}"), |b| {
            b.iter(|| {
                decode::decode(
                    black_box(&master),
                    &limits,
                    &|| {},
                    Some(decode::Shrink::to(target)),
                    decode::Scrutiny::Stored,
                )
            })
        });
    }
    let full = decode::decode(&master, &limits, &|| {}, None, decode::Scrutiny::Stored).unwrap();
    let crop = centre_square(full.width, full.height, full.orientation);
    g.bench_function("resize 2048 to 64", |b| {
        b.iter(|| scale::crop_resize(&full.rgb, 2048, 2048, crop.into(), 64))
    });
    let rgb512 = scale::crop_resize(&full.rgb, 2048, 2048, crop.into(), 512).unwrap();
    g.bench_function("encode 512", |b| {
        b.iter(|| encode::jpeg(black_box(&rgb512), 512, 85))
    });
    g.finish();
}

fn renders(c: &mut Criterion) {
    let master = master();
    let mut g = c.benchmark_group("render 2048 master");
    g.sample_size(15);
    for side in [32, 64, 128, 256, 512, 1024] {
        g.bench_with_input(
            BenchmarkId::new("shrink-on-load", side),
            &side,
            |b, &side| {
                b.iter(|| {
                    Pipeline::default()
                        .render(black_box(&master), side)
                        .unwrap()
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("full decode", side), &side, |b, &side| {
            b.iter(|| render_full_decode(black_box(&master), side))
        });
    }
    g.finish();
}

fn uploads(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalise upload");
    g.sample_size(10);
    let photo = DynamicImage::ImageRgb8(samples::photo(5472, 3648));
    // A grainy 20 MP PNG is over the default 16 MiB input limit.
    let limits = Limits {
        max_input_bytes: 256 << 20,
        ..Limits::default()
    };
    let pipeline = Pipeline {
        limits,
        ..Pipeline::default()
    };
    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let upload = samples::encode(&photo, format);
        g.bench_function(format!("20 MP {format:?}"), |b| {
            b.iter(|| {
                pipeline
                    .normalise(black_box(&upload), 2048)
                    .expect("a valid upload")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, stages, renders, uploads);
criterion_main!(benches);
