//! Seeded random inputs for a model's inputs: what `ratio bench` times on and what the conversion check compares
//! on. One generator, so a bench and a check with the same seed see the same numbers.

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};

use super::spec::{ElemType, Feed, TensorSpec};

/// The element types [`random_inputs`] can fill, and how: f32/f16 uniform in [0, 1) (image-like), i64 uniform in
/// [0, 10) (small indices).
pub const RANDOM_INPUTS: &str = "f32/f16 uniform [0,1), i64 uniform [0,10)";

/// Arrays for some of a model's inputs, one per spec, drawn in spec order from one ChaCha8 stream.
#[derive(Debug, Default)]
pub struct RandomInputs {
    f32s: Vec<(String, ArrayD<f32>)>,
    f16s: Vec<(String, ArrayD<half::f16>)>,
    i64s: Vec<(String, ArrayD<i64>)>,
}

impl RandomInputs {
    pub fn feeds(&self) -> Vec<(&str, Feed<'_>)> {
        let mut feeds: Vec<(&str, Feed<'_>)> = Vec::new();
        feeds.extend(self.f32s.iter().map(|(n, a)| (n.as_str(), Feed::F32(a.view()))));
        feeds.extend(self.f16s.iter().map(|(n, a)| (n.as_str(), Feed::F16(a.view()))));
        feeds.extend(self.i64s.iter().map(|(n, a)| (n.as_str(), Feed::I64(a.view()))));
        feeds
    }
}

/// Fill `specs` (with the shape `shape_of` gives each: index, spec) from `seed`. An element type outside
/// [`RANDOM_INPUTS`] is an error naming the input.
pub fn random_inputs<'a>(
    specs: impl IntoIterator<Item = &'a TensorSpec>,
    seed: u64,
    mut shape_of: impl FnMut(usize, &TensorSpec) -> anyhow::Result<Vec<usize>>,
) -> anyhow::Result<RandomInputs> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = RandomInputs::default();
    for (i, spec) in specs.into_iter().enumerate() {
        let shape = IxDyn(&shape_of(i, spec)?);
        let name = spec.name.clone();
        match spec.elem {
            ElemType::F32 => out.f32s.push((name, ArrayD::from_shape_fn(shape, |_| rng.random()))),
            ElemType::F16 => out.f16s.push((
                name,
                ArrayD::from_shape_fn(shape, |_| half::f16::from_f32(rng.random())),
            )),
            ElemType::I64 => out
                .i64s
                .push((name, ArrayD::from_shape_fn(shape, |_| rng.random_range(0..10)))),
            ref other => anyhow::bail!(
                "input '{}' has element type {other}; random inputs are {RANDOM_INPUTS}",
                spec.name
            ),
        }
    }
    Ok(out)
}

/// [`random_inputs`] where every shape is known: symbolic dimensions become `fill`.
pub fn random_inputs_filled<'a>(
    specs: impl IntoIterator<Item = &'a TensorSpec>,
    seed: u64,
    fill: usize,
) -> anyhow::Result<RandomInputs> {
    random_inputs(specs, seed, |_, s| Ok(s.concrete_shape(fill)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, elem: ElemType, dims: &[Option<i64>]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            elem,
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn one_seed_gives_one_stream_and_other_types_are_refused() {
        let specs = [
            spec("x", ElemType::F32, &[None, Some(3)]),
            spec("k", ElemType::I64, &[Some(4)]),
        ];
        let a = random_inputs_filled(&specs, 7, 2).unwrap();
        let b = random_inputs_filled(&specs, 7, 2).unwrap();
        let c = random_inputs_filled(&specs, 8, 2).unwrap();
        assert_eq!(a.f32s, b.f32s);
        assert_ne!(a.f32s, c.f32s);
        assert_eq!(a.f32s[0].1.shape(), &[2, 3]);
        assert!(a.f32s[0].1.iter().all(|&v| (0.0..1.0).contains(&v)));
        assert!(a.i64s[0].1.iter().all(|&v| (0..10).contains(&v)));
        assert_eq!(a.feeds().len(), 2);
        let bad = [spec("s", ElemType::Other("string".into()), &[Some(1)])];
        let e = random_inputs_filled(&bad, 0, 1).unwrap_err().to_string();
        assert!(e.contains("input 's'"), "{e}");
    }
}
