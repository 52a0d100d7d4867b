//! The `models` builders run in ONNX Runtime: every registry model and pattern fixture loads, computes outputs
//! of the declared shape, agrees with the independent reference interpreter of `models/tests/common`, and its
//! BN-folded twin computes the same logits.

#[path = "../../models/tests/common/reference.rs"]
mod reference;

use converters::Model;
use converters::ir::build::value_info_dims;
use converters::proto::ModelProto;
use models::init::WeightRng;
use models::{ModelConfig, by_name, fold_bn, fold_bn_report, names, patterns, resnet50_like};
use ndarray::{ArrayD, IxDyn};
use toolkit::runtime::{Feed, Runner, RuntimeConfig};

fn runner(what: &str, m: &ModelProto) -> Runner {
    // One thread: the machine is shared, and results must not depend on the thread count.
    Runner::from_model(&Model::new(m.clone()), &RuntimeConfig::cpu().with_threads(1))
        .unwrap_or_else(|e| panic!("{what}: ONNX Runtime rejects the model: {e}"))
}

/// The image input's shape with the symbolic batch set to `n`.
fn input_dims(m: &ModelProto, n: usize) -> Vec<usize> {
    let g = m.graph.as_ref().unwrap();
    value_info_dims(&g.input[0])
        .unwrap()
        .iter()
        .map(|d| d.map_or(n, |v| v as usize))
        .collect()
}

fn random(dims: &[usize], seed: u64) -> ArrayD<f32> {
    let n = dims.iter().product();
    ArrayD::from_shape_vec(IxDyn(dims), WeightRng::new(seed).normal(n, 1.0)).unwrap()
}

fn run_ort(what: &str, m: &ModelProto, x: &ArrayD<f32>) -> Vec<(String, ArrayD<f32>)> {
    let mut r = runner(what, m);
    let out = r
        .run(&[("input", Feed::F32(x.view()))])
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let g = m.graph.as_ref().unwrap();
    g.output
        .iter()
        .map(|o| {
            let name = o.name.clone().unwrap();
            let v = out.get(&name).unwrap_or_else(|e| panic!("{what}: {e}")).clone();
            (name, v)
        })
        .collect()
}

/// Relative agreement: |a − b| ≤ tol · max(1, max|a|). Both sides are f32 with different summation orders
/// (ORT's blocked GEMM vs. a naive f64-accumulated loop, or folded vs. unfolded weights); 1e-4 of the output
/// scale is far above that rounding and far below any real error (a wrong BN term moves logits by O(0.1)).
fn assert_close(what: &str, a: &ArrayD<f32>, b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = a.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= tol * scale, "{what}: max |diff| {diff} at scale {scale}");
}

#[test]
fn registry_models_run_in_ort_and_match_the_reference() {
    let cfg = ModelConfig::new(3, 16, 7)
        .with_width(0.25)
        .with_random_bn_stats(true)
        .with_seed(4);
    for name in names() {
        let m = by_name(name, &cfg).unwrap();
        let x = random(&input_dims(&m, 2), 1);
        let ort = run_ort(name, &m, &x);
        let (out, logits) = &ort[0];
        assert_eq!(out, "logits");
        assert_eq!(logits.shape(), [2, 7], "{name}");
        let refr = reference::run(
            &m,
            &[("input", reference::T::new(x.shape(), x.iter().copied().collect()))],
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close(&format!("{name} ORT vs reference"), logits, &refr["logits"].data, 1e-4);
    }
}

#[test]
fn folded_models_compute_the_same_logits_in_ort() {
    let cifar = ModelConfig::default().with_random_bn_stats(true).with_seed(11);
    for name in names().iter().filter(|n| **n != "resnet50") {
        let kept = by_name(name, &cifar).unwrap();
        let (folded, pairs) = fold_bn_report(&kept).unwrap();
        assert!(!pairs.is_empty(), "{name}: nothing folded");
        let x = random(&input_dims(&kept, 4), 2);
        let a = run_ort(name, &kept, &x);
        let b = run_ort(name, &folded, &x);
        assert_eq!(a[0].1.shape(), [4, 10]);
        assert_close(
            &format!("{name} kept vs folded"),
            &a[0].1,
            b[0].1.as_slice().unwrap(),
            1e-4,
        );
    }
}

#[test]
fn resnet50_like_runs_at_imagenet_shape_and_folds() {
    let kept = resnet50_like(&ModelConfig::new(3, 224, 1000).with_random_bn_stats(true)).unwrap();
    let folded = fold_bn(&kept).unwrap();
    let x = random(&[1, 3, 224, 224], 3);
    let a = run_ort("resnet50", &kept, &x);
    let b = run_ort("resnet50 folded", &folded, &x);
    assert_eq!(a[0].1.shape(), [1, 1000]);
    assert_close("resnet50 kept vs folded", &a[0].1, b[0].1.as_slice().unwrap(), 1e-4);
}

#[test]
fn pattern_fixtures_run_in_ort_and_match_the_reference() {
    for (name, build) in patterns::all() {
        let m = build();
        let dims = input_dims(&m, 2);
        let x = random(&dims, 5);
        let ort = run_ort(name, &m, &x);
        let refr = reference::run(&m, &[("input", reference::T::new(&dims, x.iter().copied().collect()))])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (out, v) in &ort {
            let declared = m
                .graph
                .as_ref()
                .unwrap()
                .output
                .iter()
                .find(|o| o.name.as_deref() == Some(out));
            let want: Vec<usize> = value_info_dims(declared.unwrap())
                .unwrap()
                .iter()
                .map(|d| d.map_or(2, |v| v as usize))
                .collect();
            assert_eq!(v.shape(), want.as_slice(), "{name}: {out}");
            assert_close(&format!("{name}: {out} ORT vs reference"), v, &refr[out].data, 1e-4);
        }
    }
}
