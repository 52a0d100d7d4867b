//! Gradients of real `torch.onnx.export` output against PyTorch autograd. `goldens/` holds tiny torchvision-style
//! nets (ShuffleNet-V2 units, MobileNet-V3 pieces, a ResNet block, GoogLeNet/Inception pooling) exported by the
//! legacy exporter, the legacy exporter with `training=PRESERVE` (deduplicated BN tensors behind Identity) and
//! the dynamo exporter with a static batch of 2, with each parameter's mean cross-entropy gradient on a batch of
//! 4 as PyTorch computes it (`scripts/grad-goldens/make.sh`; torch never runs here).
//!
//! Tolerance: both sides are float32 with different summation orders; the gradients agree to at most 4e-6 of each
//! tensor's largest entry (measured on all six), and we allow 1e-6 absolute + 1e-4 of it.

use std::path::PathBuf;

use converters::Model;
use converters::autodiff::{Optimizer, StateKind, TrainStepConfig, build_train_step};
use ndarray::{ArrayD, IxDyn};
use serde::Deserialize;
use toolkit::runtime::RuntimeConfig;
use toolkit::train::StepSession;

#[derive(Deserialize)]
struct Golden {
    exporter: String,
    batch: i64,
    input_shape: Vec<usize>,
    input: Vec<f32>,
    labels: Vec<i64>,
    loss: f32,
    grads: std::collections::BTreeMap<String, Vec<f32>>,
}

fn golden(name: &str) -> (Model, Golden) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens");
    let model = Model::load(dir.join(format!("{name}.onnx"))).unwrap();
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    (model, serde_json::from_str(&text).unwrap())
}

/// The train step's loss and gradients on the golden batch, compared with PyTorch's.
fn agrees_with_pytorch(name: &str) -> converters::autodiff::TrainStep {
    let (model, g) = golden(name);
    let cfg = TrainStepConfig {
        batch_size: g.batch,
        optimizer: Optimizer::Sgd {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
        emit_gradients: true,
        ..Default::default()
    };
    let step = build_train_step(&model, &cfg).unwrap_or_else(|e| panic!("{name} ({}): {e}", g.exporter));
    let grads = step.grad_outputs.clone();
    let kept = step.clone();
    let mut sess = StepSession::new(step, &RuntimeConfig::cpu().with_threads(1)).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&g.input_shape), g.input.clone()).unwrap();
    let y = ArrayD::from_shape_vec(IxDyn(&[g.labels.len()]), g.labels.clone()).unwrap();
    let state = sess.state.clone();
    let names: Vec<&str> = grads.iter().map(|(_, o)| o.as_str()).collect();
    let (loss, values) = sess.evaluate(x.view(), y.view(), &state, &names).unwrap();
    let mut worst_ratio = 0f32;
    assert!(
        (loss - g.loss).abs() <= 1e-5 + 1e-5 * g.loss.abs(),
        "{name}: loss {loss} vs PyTorch {}",
        g.loss
    );
    for (param, want) in &g.grads {
        let i = grads
            .iter()
            .position(|(p, _)| p == param)
            .unwrap_or_else(|| panic!("{name}: '{param}' is not trained on its own"));
        let got = &values[i];
        assert_eq!(got.len(), want.len(), "{name}: {param}");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        worst_ratio = worst_ratio.max(worst / scale.max(1e-12));
        assert!(
            worst <= 1e-6 + 1e-4 * scale,
            "{name}: d/d{param} differs from PyTorch by {worst:e} (largest |gradient| {scale:e})"
        );
    }
    assert_eq!(
        grads.len(),
        g.grads.len(),
        "{name}: the step trains tensors PyTorch does not have"
    );
    eprintln!(
        "{name}: {} parameters agree with PyTorch to {worst_ratio:.1e} of each tensor's largest gradient",
        grads.len()
    );
    kept
}

#[test]
fn shufflenet_legacy_shape_computed_split_and_shuffle() {
    agrees_with_pytorch("shufflenet_legacy");
}

#[test]
fn shufflenet_dynamo_static_batch_with_a_group_count_equal_to_the_batch() {
    let step = agrees_with_pytorch("shufflenet_dynamo_static");
    assert_eq!(step.adaptations.len(), 4, "4 shuffle Reshapes fix the batch at 2");
}

#[test]
fn mobilenet_v3_legacy_hard_activations() {
    agrees_with_pytorch("mobilenet_v3_legacy");
}

#[test]
fn resnet_preserve_deduplicated_bn_tensors() {
    let step = agrees_with_pytorch("resnet_preserve");
    // Fresh BN tensors were merged (running means with zero biases, variances with unit scales): each of the
    // 3 BNs gets its own statistics, under names no parameter uses.
    let stats: std::collections::BTreeSet<&str> = step
        .state
        .iter()
        .filter(|s| matches!(s.kind, StateKind::RunningMean | StateKind::RunningVar))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(stats.len(), 6, "{stats:?}");
    assert!(
        step.state
            .iter()
            .filter(|s| s.kind == StateKind::Param)
            .all(|s| !stats.contains(s.name.as_str()))
    );
}

#[test]
fn pools_legacy_ceil_mode_and_count_include_pad() {
    agrees_with_pytorch("pools_legacy");
}

#[test]
fn flatten_dynamo_static_view_to_the_exported_batch() {
    agrees_with_pytorch("flatten_dynamo_static");
}
