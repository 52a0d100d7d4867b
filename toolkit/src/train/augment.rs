//! Batch augmentation: random crop after zero padding, and horizontal flip, drawn from a seeded stream so that
//! a resumed run sees the same augmented batches.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Augment {
    /// Pad by this many pixels and crop back at a random offset (0 = off).
    pub crop_pad: usize,
    pub hflip: bool,
}

impl Augment {
    pub fn is_off(&self) -> bool {
        self.crop_pad == 0 && !self.hflip
    }

    /// Augment one CHW sample from `src` into `dst`.
    pub fn apply(&self, src: &[f32], dst: &mut [f32], [c, h, w]: [usize; 3], rng: &mut ChaCha8Rng) {
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn flip_only_mirrors_rows_and_crop_shifts_in_zeros() {
        let src: Vec<f32> = (0..9).map(|v| v as f32 + 1.0).collect();
        let mut dst = vec![0.0; 9];
        let flip = Augment {
            crop_pad: 0,
            hflip: true,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen_flip = false;
        for _ in 0..8 {
            flip.apply(&src, &mut dst, [1, 3, 3], &mut rng);
            if dst == src {
                continue;
            }
            assert_eq!(dst, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]);
            seen_flip = true;
        }
        assert!(seen_flip);
        let crop = Augment {
            crop_pad: 1,
            hflip: false,
        };
        for _ in 0..8 {
            crop.apply(&src, &mut dst, [1, 3, 3], &mut rng);
            let kept: f32 = dst.iter().sum();
            assert!(kept <= 45.0 && dst.iter().all(|v| *v == 0.0 || src.contains(v)));
        }
    }
}
