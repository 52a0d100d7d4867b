//! Per-unit statistics of rectifier outputs (dead units, sparsity) and of rectifier inputs (negative mass).
//! Tensors arrive as `[N, C, …]` slices; a unit is a channel, counted over every sample and spatial position.

/// Dead-unit fraction and sparsity at a rectifier output.
#[derive(Debug, Clone)]
pub struct ActivityStats {
    channels: usize,
    active: Vec<u64>,
    entries: u64,
    inactive_entries: u64,
}

impl ActivityStats {
    pub fn new(channels: usize) -> Self {
        ActivityStats {
            channels,
            active: vec![0; channels],
            entries: 0,
            inactive_entries: 0,
        }
    }

    /// `data` is `[n, channels, spatial]` row-major. An entry is inactive when it is ≤ 0, which for ReLU/ReLU6 is
    /// exactly the zero output and for LeakyReLU the gated-off side.
    pub fn push(&mut self, data: &[f32], n: usize, spatial: usize) {
        let c = self.channels;
        assert_eq!(data.len(), n * c * spatial, "activation shape mismatch");
        for sample in data.chunks_exact(c * spatial) {
            for (ch, plane) in sample.chunks_exact(spatial).enumerate() {
                let on = plane.iter().filter(|&&x| x > 0.0).count() as u64;
                self.active[ch] += on;
                self.inactive_entries += spatial as u64 - on;
            }
        }
        self.entries += data.len() as u64;
    }

    /// Share of channels that were never positive.
    pub fn dead_fraction(&self) -> f64 {
        if self.channels == 0 {
            return 0.0;
        }
        self.active.iter().filter(|&&a| a == 0).count() as f64 / self.channels as f64
    }

    /// Share of entries that were ≤ 0.
    pub fn sparsity(&self) -> f64 {
        if self.entries == 0 {
            return 0.0;
        }
        self.inactive_entries as f64 / self.entries as f64
    }
}

/// Share of the pre-activation L1 mass that lies below 0: Σ|x|·[x<0] / Σ|x|. This is what a ReLU removes, so a
/// ReLU whose input has little negative mass changes the function little when it is deleted.
#[derive(Debug, Clone, Default)]
pub struct NegativeMass {
    negative: f64,
    total: f64,
}

impl NegativeMass {
    pub fn push(&mut self, data: &[f32]) {
        // Per-chunk f32→f64 partial sums keep long streams exact enough without a per-element f64 add chain.
        for chunk in data.chunks(4096) {
            let mut neg = 0.0f64;
            let mut tot = 0.0f64;
            for &x in chunk {
                let a = x.abs() as f64;
                tot += a;
                if x < 0.0 {
                    neg += a;
                }
            }
            self.negative += neg;
            self.total += tot;
        }
    }

    pub fn value(&self) -> f64 {
        if self.total == 0.0 {
            0.0
        } else {
            self.negative / self.total
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_units_and_sparsity_by_hand() {
        // 2 samples, 3 channels, 2 positions. Channel 1 never fires; channel 2 fires once.
        let data = [
            1.0, 2.0, 0.0, 0.0, 0.0, 0.5, //
            3.0, 0.0, -1.0, 0.0, 0.0, 0.0,
        ];
        let mut s = ActivityStats::new(3);
        s.push(&data[..6], 1, 2);
        s.push(&data[6..], 1, 2);
        assert!((s.dead_fraction() - 1.0 / 3.0).abs() < 1e-15);
        // Positive entries: 1,2,0.5,3 → 4 of 12 active.
        assert!((s.sparsity() - 8.0 / 12.0).abs() < 1e-15);
    }

    #[test]
    fn negative_mass_by_hand() {
        let mut m = NegativeMass::default();
        m.push(&[1.0, -3.0]);
        m.push(&[0.0, -1.0, 5.0]);
        assert!((m.value() - 4.0 / 10.0).abs() < 1e-15);
        assert_eq!(NegativeMass::default().value(), 0.0);
    }
}
