//! Write a synthetic ImageFolder for the streaming benchmark: `N` RGB images over `C` class folders, sizes
//! drawn from 200–320 px per side (so RandomResizedCrop and the preset's resize both have work), three in four
//! JPEG (quality 90) and one in four PNG. Each class has its own colour and stripe frequency under seeded
//! noise, so a model can learn something. Seeded: the same arguments write the same bytes.
//!
//! `cargo run --release -p ratio-benches --bin gen_imagefolder -- DIR [N=20000] [CLASSES=10] [SEED=0]`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::codecs::jpeg::JpegEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn image_of(i: usize, classes: usize, seed: u64) -> (usize, image::RgbImage) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(i as u64);
    let class = i % classes;
    let (w, h) = (rng.random_range(200..=320u32), rng.random_range(200..=320u32));
    let hue = class as f32 / classes as f32 * std::f32::consts::TAU;
    let base = [hue.cos(), (hue + 2.1).cos(), (hue + 4.2).cos()].map(|c| 128.0 + 70.0 * c);
    let freq = 0.02 + 0.01 * class as f32;
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let stripe = 40.0 * ((x as f32 + 0.5 * y as f32) * freq + phase).sin();
        image::Rgb(base.map(|b| (b + stripe + rng.random_range(-25.0..25.0)).clamp(0.0, 255.0) as u8))
    });
    (class, img)
}

fn write(root: &Path, i: usize, classes: usize, seed: u64) -> Result<()> {
    let (class, img) = image_of(i, classes, seed);
    let dir = root.join(format!("class{class:02}"));
    let path: PathBuf = if i % 4 == 3 {
        dir.join(format!("{i:06}.png"))
    } else {
        dir.join(format!("{i:06}.jpg"))
    };
    if path.extension().is_some_and(|e| e == "png") {
        img.save(&path)
    } else {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        JpegEncoder::new_with_quality(&mut f, 90).encode_image(&img)
    }
    .with_context(|| format!("writing {}", path.display()))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().map(PathBuf::from) else {
        bail!("usage: gen_imagefolder DIR [N=20000] [CLASSES=10] [SEED=0]");
    };
    let num = |k: usize, default: usize| -> Result<usize> {
        args.get(k).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("argument {k}: '{v}' is not a count"))
        })
    };
    let (n, classes, seed) = (num(1, 20_000)?, num(2, 10)?.max(1), num(3, 0)? as u64);
    for c in 0..classes {
        std::fs::create_dir_all(root.join(format!("class{c:02}")))?;
    }
    (0..n)
        .into_par_iter()
        .try_for_each(|i| write(&root, i, classes, seed))?;
    println!(
        "wrote {n} images in {classes} classes under {} (seed {seed})",
        root.display()
    );
    Ok(())
}
