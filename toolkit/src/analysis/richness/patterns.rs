//! Distinct binary activation patterns: each sample's on/off pattern over a whole layer (which linear region of
//! the network it falls in) is hashed to 64 bits and counted; their number and entropy say how finely the layer
//! partitions the input set.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct PatternCounter {
    counts: HashMap<u64, u64>,
    samples: u64,
}

/// splitmix64 finaliser: cheap, well mixed, and fixed across runs and platforms (unlike `RandomState`).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seeded hash of a sample index: fixed train/test splits and spatial position choices that do not depend on
/// batch boundaries.
pub fn split_hash(seed: u64, index: u64) -> u64 {
    mix(mix(seed ^ 0x5851_f42d_4c95_7f2d).wrapping_add(index))
}

/// Hash of the sign pattern (x > 0) of one sample's activations. Collisions at 64 bits are negligible for the
/// sample counts used here (birthday bound ~1e-10 at 1e5 samples).
pub fn sign_pattern_hash(values: &[f32]) -> u64 {
    let mut h = mix(values.len() as u64);
    for chunk in values.chunks(64) {
        let mut word = 0u64;
        for (i, &x) in chunk.iter().enumerate() {
            word |= u64::from(x > 0.0) << i;
        }
        h = mix(h ^ word).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    h
}

impl PatternCounter {
    /// `data` holds `n` samples of equal size, row-major.
    pub fn push(&mut self, data: &[f32], n: usize) {
        if n == 0 {
            return;
        }
        let per = data.len() / n;
        for sample in data.chunks_exact(per) {
            *self.counts.entry(sign_pattern_hash(sample)).or_default() += 1;
        }
        self.samples += n as u64;
    }

    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Shannon entropy of the pattern distribution, in bits (log2 of `distinct` when all are equally frequent).
    pub fn entropy_bits(&self) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        let n = self.samples as f64;
        self.counts
            .values()
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.log2()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_sign_patterns() {
        let mut p = PatternCounter::default();
        // Patterns: (+,-), (+,-) with other magnitudes, (-,+), (0,+) which is the same sign pattern as (-,+).
        p.push(&[1.0, -1.0, 2.0, -5.0], 2);
        p.push(&[-1.0, 1.0, 0.0, 3.0], 2);
        assert_eq!(p.distinct(), 2);
        assert!((p.entropy_bits() - 1.0).abs() < 1e-15);
        let mut q = PatternCounter::default();
        q.push(&[1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0], 4);
        // Four equiprobable patterns → 2 bits.
        assert_eq!(q.distinct(), 4);
        assert!((q.entropy_bits() - 2.0).abs() < 1e-15);
    }

    #[test]
    fn hash_sees_every_position_and_length() {
        let base = vec![1.0f32; 130];
        let h0 = sign_pattern_hash(&base);
        for i in [0, 63, 64, 129] {
            let mut v = base.clone();
            v[i] = -1.0;
            assert_ne!(sign_pattern_hash(&v), h0, "flip at {i} not seen");
        }
        assert_ne!(sign_pattern_hash(&base[..129]), h0);
    }
}
