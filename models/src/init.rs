//! Seeded weight initialisation, following torchvision: Kaiming-normal (fan-out, ReLU gain) for convolutions,
//! PyTorch's default uniform(±1/√fan_in) for fully-connected layers and biases.
//!
//! Normal samples come from Box–Muller over a ChaCha8 stream rather than from `rand_distr`, so the bytes of a
//! model depend only on the seed and this file.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

pub struct WeightRng(ChaCha8Rng);

impl WeightRng {
    pub fn new(seed: u64) -> Self {
        WeightRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in (0, 1], 24-bit resolution; never 0 so that `ln` is finite.
    fn open01(&mut self) -> f32 {
        ((self.0.next_u32() >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
    }

    pub fn normal(&mut self, n: usize, std: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let r = (-2.0 * self.open01().ln()).sqrt() * std;
            let (s, c) = (std::f32::consts::TAU * self.open01()).sin_cos();
            out.push(r * c);
            out.push(r * s);
        }
        out.truncate(n);
        out
    }

    pub fn uniform(&mut self, n: usize, low: f32, high: f32) -> Vec<f32> {
        (0..n).map(|_| low + (high - low) * self.open01()).collect()
    }
}

/// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")` for a weight [cout, cin/g, kh, kw]:
/// std = √(2 / (cout·kh·kw)).
pub fn kaiming_normal_fan_out(rng: &mut WeightRng, dims: &[i64]) -> Vec<f32> {
    let n: i64 = dims.iter().product();
    let fan_out = dims[0] * dims[2..].iter().product::<i64>();
    rng.normal(n as usize, (2.0 / fan_out as f32).sqrt())
}

/// PyTorch's default Linear/Conv bias and Linear weight init: uniform(±1/√fan_in).
pub fn torch_default_uniform(rng: &mut WeightRng, n: usize, fan_in: i64) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    rng.uniform(n, -bound, bound)
}
