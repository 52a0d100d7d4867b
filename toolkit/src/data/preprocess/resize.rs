//! Resampling that matches Pillow's `Image.resize` (libImaging/Resample.c), which torchvision's `Resize` calls on
//! PIL images.
//!
//! Bilinear and bicubic are antialiased: the filter support is scaled by the downscale factor, so every source
//! pixel under an output pixel contributes. 8-bit images use Pillow's fixed-point path (22-bit coefficients,
//! horizontal pass rounded to u8, then vertical), so results are bit-exact; f32 images use its double path.
//! Nearest samples the source pixel under each output pixel's centre, as Pillow's affine nearest transform does.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Nearest,
    Bilinear,
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.5,
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Nearest => f64::from(u8::from(x < 0.5)),
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                // Keys cubic with a = -0.5, as Pillow.
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Per output pixel: first source index, and normalised weights over the window.
struct Coeffs {
    first: Vec<usize>,
    weights: Vec<Vec<f64>>,
}

/// Pillow's `precompute_coeffs` for the whole input range.
fn coeffs(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let mut first = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // Pillow truncates with a C cast after adding 0.5; values here are > -0.5 so this is floor for ≥ 0.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let mut k: Vec<f64> = (xmin..xmax)
            .map(|x| filter.weight((x as f64 - center + 0.5) / filterscale))
            .collect();
        let sum: f64 = k.iter().sum();
        if sum != 0.0 {
            k.iter_mut().for_each(|w| *w /= sum);
        }
        first.push(xmin);
        weights.push(k);
    }
    Coeffs { first, weights }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `normalize_coeffs_8bpc`: round half away from zero to 22-bit fixed point.
fn fixed(k: &[f64]) -> Vec<i32> {
    k.iter()
        .map(|&w| {
            let s = w * f64::from(1u32 << PRECISION_BITS);
            if w < 0.0 { (s - 0.5) as i32 } else { (s + 0.5) as i32 }
        })
        .collect()
}

fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resample one axis of a u8 image. `stride`/`count` describe the axis being resized in units of pixels.
fn pass_u8(src: &[u8], dims: [usize; 3], out_len: usize, horizontal: bool, filter: Filter) -> (Vec<u8>, [usize; 3]) {
    let [h, w, c] = dims;
    let (in_len, od) = if horizontal {
        (w, [h, out_len, c])
    } else {
        (h, [out_len, w, c])
    };
    let cf = coeffs(in_len, out_len, filter);
    let kk: Vec<Vec<i32>> = cf.weights.iter().map(|k| fixed(k)).collect();
    let mut out = vec![0u8; od[0] * od[1] * c];
    for y in 0..od[0] {
        for x in 0..od[1] {
            let o = if horizontal { x } else { y };
            let (first, k) = (cf.first[o], &kk[o]);
            for ch in 0..c {
                let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                for (j, &kj) in k.iter().enumerate() {
                    let (sy, sx) = if horizontal { (y, first + j) } else { (first + j, x) };
                    ss += i32::from(src[(sy * w + sx) * c + ch]) * kj;
                }
                out[(y * od[1] + x) * c + ch] = clip8(ss);
            }
        }
    }
    (out, od)
}

fn pass_f32(src: &[f32], dims: [usize; 3], out_len: usize, horizontal: bool, filter: Filter) -> (Vec<f32>, [usize; 3]) {
    let [h, w, c] = dims;
    let (in_len, od) = if horizontal {
        (w, [h, out_len, c])
    } else {
        (h, [out_len, w, c])
    };
    let cf = coeffs(in_len, out_len, filter);
    let mut out = vec![0f32; od[0] * od[1] * c];
    for y in 0..od[0] {
        for x in 0..od[1] {
            let o = if horizontal { x } else { y };
            let (first, k) = (cf.first[o], &cf.weights[o]);
            for ch in 0..c {
                let mut ss = 0f64;
                for (j, &kj) in k.iter().enumerate() {
                    let (sy, sx) = if horizontal { (y, first + j) } else { (first + j, x) };
                    ss += f64::from(src[(sy * w + sx) * c + ch]) * kj;
                }
                out[(y * od[1] + x) * c + ch] = ss as f32;
            }
        }
    }
    (out, od)
}

fn nearest<T: Copy>(src: &[T], [h, w, c]: [usize; 3], oh: usize, ow: usize) -> Vec<T> {
    let (sy, sx) = (h as f64 / oh as f64, w as f64 / ow as f64);
    let mut out = Vec::with_capacity(oh * ow * c);
    for y in 0..oh {
        let iy = (((y as f64 + 0.5) * sy) as usize).min(h - 1);
        for x in 0..ow {
            let ix = (((x as f64 + 0.5) * sx) as usize).min(w - 1);
            out.extend_from_slice(&src[(iy * w + ix) * c..(iy * w + ix + 1) * c]);
        }
    }
    out
}

/// Resize an HWC u8 image to `oh × ow`.
pub fn resize_u8(src: &[u8], dims: [usize; 3], oh: usize, ow: usize, filter: Filter) -> Vec<u8> {
    if filter == Filter::Nearest {
        return nearest(src, dims, oh, ow);
    }
    // Pillow skips a pass whose size does not change, and runs horizontal before vertical.
    let (mut img, mut d) = (src.to_vec(), dims);
    if ow != d[1] {
        (img, d) = pass_u8(&img, d, ow, true, filter);
    }
    if oh != d[0] {
        (img, _) = pass_u8(&img, d, oh, false, filter);
    }
    img
}

/// Resize an HWC f32 image to `oh × ow` (Pillow mode "F").
pub fn resize_f32(src: &[f32], dims: [usize; 3], oh: usize, ow: usize, filter: Filter) -> Vec<f32> {
    if filter == Filter::Nearest {
        return nearest(src, dims, oh, ow);
    }
    let (mut img, mut d) = (src.to_vec(), dims);
    if ow != d[1] {
        (img, d) = pass_f32(&img, d, ow, true, filter);
    }
    if oh != d[0] {
        (img, _) = pass_f32(&img, d, oh, false, filter);
    }
    img
}
