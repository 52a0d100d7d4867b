//! Training transforms, drawn from a seeded per-sample stream so that a resumed run sees the same batches and the
//! parallel decoder's thread order does not matter:
//! - for small sets, on the preprocessed tensor: random crop after zero padding, horizontal flip (as before);
//! - torchvision's `RandomResizedCrop(size, scale, ratio)` on the decoded image, which replaces the preset's
//!   resize and centre crop, then a horizontal flip;
//! - optional colour jitter (brightness, contrast, saturation) on the pixels before normalisation.
//!
//! Evaluation never goes through here: it uses the preset alone, as `ratio eval` does.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::preprocess::{Filter, PreprocessError, Preset, resize};
use crate::data::{Image, Pixels};

/// torchvision's `RandomResizedCrop`: a crop covering `scale` of the area with aspect ratio in `ratio`, resized
/// (bilinear, antialiased as Pillow does) to `size × size`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RandomResizedCrop {
    pub size: usize,
    pub scale: [f64; 2],
    pub ratio: [f64; 2],
}

impl RandomResizedCrop {
    pub fn new(size: usize) -> Self {
        RandomResizedCrop {
            size,
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }

    /// torchvision's `get_params`: ten tries at a random area and log-uniform aspect ratio, else the largest
    /// centred crop within the ratio bounds. Returns (top, left, height, width).
    pub fn params(&self, height: usize, width: usize, rng: &mut ChaCha8Rng) -> (usize, usize, usize, usize) {
        let area = (height * width) as f64;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.random_range(self.scale[0]..=self.scale[1]);
            let aspect = rng.random_range(lr0..=lr1).exp();
            let w = (target * aspect).sqrt().round_ties_even() as usize;
            let h = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return (top, left, h, w);
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (h, w) = if in_ratio < self.ratio[0] {
            ((width as f64 / self.ratio[0]).round_ties_even() as usize, width)
        } else if in_ratio > self.ratio[1] {
            (height, (height as f64 * self.ratio[1]).round_ties_even() as usize)
        } else {
            (height, width)
        };
        ((height - h) / 2, (width - w) / 2, h, w)
    }
}

/// torchvision's `ColorJitter` without hue: each non-zero strength `s` draws a factor from [max(0, 1−s), 1+s];
/// the adjustments run in a random order, on the pixel values, clamped to [0, 255] for 8-bit images and [0, 1]
/// for float images (tensor semantics: no rounding between adjustments).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
}

impl ColorJitter {
    pub fn is_off(&self) -> bool {
        self.brightness == 0.0 && self.contrast == 0.0 && self.saturation == 0.0
    }

    /// Jitter HWC `pixels` with `c` channels in place.
    pub fn apply(&self, pixels: &mut [f32], c: usize, bound: f32, rng: &mut ChaCha8Rng) {
        let mut order = [0usize, 1, 2];
        order.shuffle(rng);
        let factor = |s: f32, rng: &mut ChaCha8Rng| (s > 0.0).then(|| rng.random_range((1.0 - s).max(0.0)..=1.0 + s));
        let f = [
            factor(self.brightness, rng),
            factor(self.contrast, rng),
            factor(self.saturation, rng),
        ];
        let blend = |v: f32, other: f32, k: f32| (k * v + (1.0 - k) * other).clamp(0.0, bound);
        for op in order {
            let Some(k) = f[op] else { continue };
            match op {
                0 => pixels.iter_mut().for_each(|v| *v = blend(*v, 0.0, k)),
                1 => {
                    let n = (pixels.len() / c).max(1) as f32;
                    let mean = pixels.chunks_exact(c).map(gray).sum::<f32>() / n;
                    pixels.iter_mut().for_each(|v| *v = blend(*v, mean, k));
                }
                _ if c >= 3 => {
                    for p in pixels.chunks_exact_mut(c) {
                        let g = gray(p);
                        p.iter_mut().take(3).for_each(|v| *v = blend(*v, g, k));
                    }
                }
                // Saturation of a one-channel image is the image itself.
                _ => {}
            }
        }
    }
}

/// torchvision's `rgb_to_grayscale` weights; a one-channel pixel is its own luminance.
fn gray(p: &[f32]) -> f32 {
    if p.len() >= 3 {
        0.2989 * p[0] + 0.587 * p[1] + 0.114 * p[2]
    } else {
        p[0]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Augment {
    /// Pad by this many pixels and crop back at a random offset (0 = off).
    pub crop_pad: usize,
    pub hflip: bool,
    pub random_resized_crop: Option<RandomResizedCrop>,
    pub jitter: ColorJitter,
}

impl Augment {
    pub fn is_off(&self) -> bool {
        self.crop_pad == 0 && !self.hflip && self.random_resized_crop.is_none() && self.jitter.is_off()
    }

    /// Combinations that cannot work, as a message naming the flags.
    pub fn check(&self) -> Result<(), String> {
        if let Some(r) = self.random_resized_crop {
            if self.crop_pad > 0 {
                return Err("--crop-pad and --random-resized-crop both crop; use one".into());
            }
            let [s0, s1] = r.scale;
            let [r0, r1] = r.ratio;
            if r.size == 0 || !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) || !(0.0 < r0 && r0 <= r1 && r1.is_finite()) {
                return Err(format!(
                    "--random-resized-crop {} with scale {:?} and ratio {:?}: need size ≥ 1, 0 < scale lo ≤ hi ≤ 1, 0 < ratio lo ≤ hi",
                    r.size, r.scale, r.ratio
                ));
            }
        }
        let j = self.jitter;
        if [j.brightness, j.contrast, j.saturation]
            .iter()
            .any(|s| !s.is_finite() || *s < 0.0)
        {
            return Err(format!("colour jitter strengths must be ≥ 0, got {j:?}"));
        }
        Ok(())
    }

    /// `(C, H, W)` of a training sample whose evaluation view is `eval_shape`.
    pub fn train_shape(&self, eval_shape: [usize; 3]) -> [usize; 3] {
        match self.random_resized_crop {
            Some(r) => [eval_shape[0], r.size, r.size],
            None => eval_shape,
        }
    }

    /// The training view of decoded image `index` into `out` (CHW of [`Augment::train_shape`]); `want` is that
    /// shape, and a sample that would come out otherwise is an error (a ragged set without a resize).
    pub fn sample_into(
        &self,
        index: usize,
        img: &Image,
        preset: &Preset,
        want: [usize; 3],
        rng: &mut ChaCha8Rng,
        out: &mut [f32],
    ) -> Result<(), PreprocessError> {
        let (mut pixels, dims) = match self.random_resized_crop {
            Some(r) => self.resized_crop(&preset.color_converted(img), r, rng),
            None => preset.pixels(img)?,
        };
        let [h, w, c] = dims;
        if [c, h, w] != want {
            return Err(PreprocessError::Ragged {
                index,
                got: dims,
                want: [want[1], want[2], want[0]],
            });
        }
        if !self.jitter.is_off() {
            let bound = match img.pixels {
                Pixels::U8(_) => 255.0,
                Pixels::F32(_) => 1.0,
            };
            self.jitter.apply(&mut pixels, c, bound, rng);
        }
        if self.random_resized_crop.is_some() || (self.crop_pad == 0 && !self.hflip) {
            preset.normalize_into(&pixels, dims, out);
            return Ok(());
        }
        let mut t = vec![0f32; out.len()];
        preset.normalize_into(&pixels, dims, &mut t);
        self.pad_crop_flip(&t, out, want, rng);
        Ok(())
    }

    /// RandomResizedCrop then the flip, on HWC pixels.
    fn resized_crop(&self, img: &Image, r: RandomResizedCrop, rng: &mut ChaCha8Rng) -> (Vec<f32>, [usize; 3]) {
        let (top, left, h, w) = r.params(img.height, img.width, rng);
        let c = img.channels;
        let dims = [h, w, c];
        let (sz, bilinear) = (r.size, Filter::Bilinear);
        let mut pixels = match &img.pixels {
            Pixels::U8(v) => {
                let cropped = crop(v, img.width, c, top, left, h, w);
                let resized = resize::resize_u8(&cropped, dims, sz, sz, bilinear);
                resized.into_iter().map(f32::from).collect()
            }
            Pixels::F32(v) => resize::resize_f32(&crop(v, img.width, c, top, left, h, w), dims, sz, sz, bilinear),
        };
        if self.hflip && rng.random_bool(0.5) {
            for row in pixels.chunks_exact_mut(r.size * c) {
                for x in 0..r.size / 2 {
                    for ch in 0..c {
                        row.swap(x * c + ch, (r.size - 1 - x) * c + ch);
                    }
                }
            }
        }
        (pixels, [r.size, r.size, c])
    }

    /// Crop after zero padding, and flip, on one preprocessed CHW sample.
    fn pad_crop_flip(&self, src: &[f32], dst: &mut [f32], [c, h, w]: [usize; 3], rng: &mut ChaCha8Rng) {
        let p = self.crop_pad as i64;
        let (dy, dx) = if p > 0 {
            (rng.random_range(-p..=p), rng.random_range(-p..=p))
        } else {
            (0, 0)
        };
        let flip = self.hflip && rng.random_bool(0.5);
        for ch in 0..c {
            for y in 0..h {
                let sy = y as i64 + dy;
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = xx as i64 + dx;
                    let v = if sy >= 0 && sy < h as i64 && sx >= 0 && sx < w as i64 {
                        src[(ch * h + sy as usize) * w + sx as usize]
                    } else {
                        0.0
                    };
                    dst[(ch * h + y) * w + x] = v;
                }
            }
        }
    }
}

/// Rows `top..top+h`, columns `left..left+w` of an HWC image `width` wide.
fn crop<T: Copy>(v: &[T], width: usize, c: usize, top: usize, left: usize, h: usize, w: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(h * w * c);
    for y in top..top + h {
        let row = (y * width + left) * c;
        out.extend_from_slice(&v[row..row + w * c]);
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn identity_preset() -> Preset {
        let mut p = crate::data::preprocess::presets::builtin("digits").unwrap();
        p.pipeline.scale = 1.0;
        p
    }

    #[test]
    fn flip_only_mirrors_rows_and_crop_shifts_in_zeros() {
        let img = Image::f32(3, 3, 1, (0..9).map(|v| v as f32 + 1.0).collect());
        let src = img.to_f32();
        let preset = identity_preset();
        let mut dst = vec![0.0; 9];
        let flip = Augment {
            hflip: true,
            ..Augment::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen_flip = false;
        for _ in 0..8 {
            flip.sample_into(0, &img, &preset, [1, 3, 3], &mut rng, &mut dst)
                .unwrap();
            if dst == src {
                continue;
            }
            assert_eq!(dst, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]);
            seen_flip = true;
        }
        assert!(seen_flip);
        let crop = Augment {
            crop_pad: 1,
            ..Augment::default()
        };
        for _ in 0..8 {
            crop.sample_into(0, &img, &preset, [1, 3, 3], &mut rng, &mut dst)
                .unwrap();
            let kept: f32 = dst.iter().sum();
            assert!(kept <= 45.0 && dst.iter().all(|v| *v == 0.0 || src.contains(v)));
        }
    }

    #[test]
    fn random_resized_crop_stays_inside_the_image_and_in_bounds() {
        let r = RandomResizedCrop::new(8);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut small, mut large) = (false, false);
        for _ in 0..500 {
            let (t, l, h, w) = r.params(300, 200, &mut rng);
            assert!(t + h <= 300 && l + w <= 200 && h > 0 && w > 0);
            let frac = (h * w) as f64 / 60_000.0;
            // Rounding to whole pixels can push a crop just past the drawn bounds.
            assert!((0.075..=1.0).contains(&frac), "area fraction {frac}");
            let ar = w as f64 / h as f64;
            assert!((0.74..=1.34).contains(&ar), "aspect {ar}");
            small |= frac < 0.2;
            large |= frac > 0.8;
        }
        assert!(
            small && large,
            "scale (0.08, 1) must produce both small and large crops"
        );
        // An image too thin for the ratio range falls back to the largest centred crop of ratio 3/4.
        let (t, l, h, w) = RandomResizedCrop { scale: [1.0, 1.0], ..r }.params(400, 10, &mut rng);
        assert_eq!((t, l, h, w), ((400 - 13) / 2, 0, 13, 10));
    }

    #[test]
    fn jitter_brightness_scales_and_clamps_saturation_keeps_gray() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let b = ColorJitter {
            brightness: 0.5,
            ..ColorJitter::default()
        };
        let mut px = vec![100.0, 200.0, 250.0];
        b.apply(&mut px, 3, 255.0, &mut rng);
        let k = px[0] / 100.0;
        assert!((0.5..=1.5).contains(&k), "{k}");
        assert!((px[1] - (200.0 * k).min(255.0)).abs() < 1e-3 && px[2] <= 255.0);
        // A gray pixel has nothing to saturate.
        let s = ColorJitter {
            saturation: 0.9,
            ..ColorJitter::default()
        };
        let mut g = vec![80.0, 80.0, 80.0];
        s.apply(&mut g, 3, 255.0, &mut rng);
        // torchvision's luminance weights sum to 0.9999, so gray moves by at most 0.9 × 0.008.
        assert!(g.iter().all(|v| (v - 80.0).abs() < 1e-2), "{g:?}");
    }
}
