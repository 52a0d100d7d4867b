//! Every export-idiom fixture fine-tunes through a real ONNX Runtime train step: the loss is finite and falls on
//! a class-structured data set, and the inference model written back runs and carries the learned values
//! (untied BN statistics stay separate; a static-batch export keeps its batch).

use converters::Model;
use converters::autodiff::{Adaptation, Optimizer, StateKind, TrainStepConfig, build_train_step};
use converters::ir::attr::NodeExt;
use converters::ir::build::value_info_dims;
use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use toolkit::runtime::{Feed, Runner, RuntimeConfig};
use toolkit::train::StepSession;

const CLASSES: usize = 4;

/// `batches` batches of `batch` images [C, S, S]: a fixed random template per class plus noise, so a few SGD
/// steps can lower the loss.
fn data(sample: &[usize], batch: usize, batches: usize, seed: u64) -> Vec<(ArrayD<f32>, ArrayD<i64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len: usize = sample.iter().product();
    let templates: Vec<Vec<f32>> = (0..CLASSES)
        .map(|_| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let mut shape = vec![batch];
    shape.extend(sample);
    (0..batches)
        .map(|_| {
            let labels: Vec<i64> = (0..batch).map(|_| rng.random_range(0..CLASSES as i64)).collect();
            let x: Vec<f32> = labels
                .iter()
                .flat_map(|&l| templates[l as usize].clone())
                .map(|v| v + rng.random_range(-0.3..0.3))
                .collect();
            (
                ArrayD::from_shape_vec(IxDyn(&shape), x).unwrap(),
                ArrayD::from_shape_vec(IxDyn(&[batch]), labels).unwrap(),
            )
        })
        .collect()
}

fn mean_loss(sess: &mut StepSession, set: &[(ArrayD<f32>, ArrayD<i64>)]) -> f32 {
    let state = sess.state.clone();
    let total: f32 = set
        .iter()
        .map(|(x, y)| sess.evaluate(x.view(), y.view(), &state, &[]).unwrap().0)
        .sum();
    total / set.len() as f32
}

struct Tuned {
    sess: StepSession,
    before: f32,
    after: f32,
}

/// Fine-tune `name` at `batch` for 6 passes over 3 batches with SGD + momentum.
fn finetune(name: &str, batch: usize) -> Tuned {
    let proto = models::idioms::by_name(name).unwrap();
    let dims = value_info_dims(&proto.graph.as_ref().unwrap().input[0]).unwrap();
    let sample: Vec<usize> = dims[1..].iter().map(|d| d.unwrap() as usize).collect();
    let cfg = TrainStepConfig {
        batch_size: batch as i64,
        optimizer: Optimizer::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        },
        ..Default::default()
    };
    let step = build_train_step(&Model::new(proto), &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut sess = StepSession::new(step, &RuntimeConfig::cpu().with_threads(1)).unwrap();
    let set = data(&sample, batch, 3, 31);
    let before = mean_loss(&mut sess, &set);
    for epoch in 0..6 {
        for (x, y) in &set {
            let out = sess.train_step(x.view(), y.view(), 0.05).unwrap();
            assert!(out.loss.is_finite(), "{name}: epoch {epoch} loss {}", out.loss);
        }
    }
    let after = mean_loss(&mut sess, &set);
    eprintln!("{name} at batch {batch}: loss {before:.4} → {after:.4}");
    assert!(
        after.is_finite() && after < 0.8 * before,
        "{name}: loss {before} → {after}"
    );
    Tuned { sess, before, after }
}

/// Logits of the written-back inference model on a zero batch of `batch`.
fn inference_logits(m: &Model, batch: usize) -> ArrayD<f32> {
    let g = m.graph();
    let dims = value_info_dims(&g.input[0]).unwrap();
    let mut shape = vec![batch];
    shape.extend(dims[1..].iter().map(|d| d.unwrap() as usize));
    let x = ArrayD::<f32>::from_elem(IxDyn(&shape), 0.1);
    let mut r = Runner::from_model(m, &RuntimeConfig::cpu().with_threads(1)).unwrap();
    let mut out = r.run(&[("input", Feed::F32(x.view()))]).unwrap();
    out.take("logits").unwrap()
}

#[test]
fn static_batch_dynamo_export_fine_tunes_at_another_batch() {
    let t = finetune("dynamo_static_flatten", 4);
    let rewritten: Vec<String> = t
        .sess
        .step
        .adaptations
        .iter()
        .filter(|a| matches!(a, Adaptation::Rebatched(_)))
        .map(|a| a.to_string())
        .collect();
    assert_eq!(rewritten.len(), 3, "{rewritten:?}");
    // Written back at the batch it was exported with, with the learned weights.
    let m = t.sess.inference_model().unwrap();
    assert_eq!(value_info_dims(&m.graph().input[0]).unwrap()[0], Some(2));
    let logits = inference_logits(&m, 2);
    assert_eq!(logits.shape(), &[2, 10]);
    let initial = inference_logits(&Model::new(models::idioms::dynamo_static_flatten()), 2);
    assert!(logits.iter().zip(&initial).any(|(a, b)| (a - b).abs() > 1e-4));
    assert!(t.after < t.before);
}

#[test]
fn shape_computed_shuffle_fine_tunes() {
    let t = finetune("shufflenet_shape_shuffle", 5);
    let m = t.sess.inference_model().unwrap();
    // Still a dynamic-batch model: any batch runs.
    assert_eq!(inference_logits(&m, 3).shape(), &[3, 10]);
}

#[test]
fn deduplicated_bn_statistics_fine_tune_as_separate_tensors() {
    let t = finetune("dedup_bn_identity", 4);
    let means: Vec<(&str, &ArrayD<f32>)> = t
        .sess
        .step
        .state
        .iter()
        .zip(&t.sess.state)
        .filter(|(s, _)| s.kind == StateKind::RunningMean)
        .map(|(s, v)| (s.name.as_str(), v))
        .collect();
    assert_eq!(means.len(), 3);
    // Each BN saw different activations, so its running mean moved differently (they all started at 0).
    for (i, (a, va)) in means.iter().enumerate() {
        assert!(va.iter().any(|v| v.abs() > 1e-4), "{a} never updated");
        for (b, vb) in &means[i + 1..] {
            assert!(
                va.iter().zip(vb.iter()).any(|(x, y)| (x - y).abs() > 1e-4),
                "{a} and {b} stayed tied"
            );
        }
    }
    let m = t.sess.inference_model().unwrap();
    assert!(m.graph().node.iter().all(|n| n.op() != "Identity"));
    assert_eq!(inference_logits(&m, 2).shape(), &[2, 10]);
}

#[test]
fn hard_activation_mobilenet_fine_tunes() {
    let t = finetune("mobilenet_v3_hard", 4);
    assert!(
        inference_logits(&t.sess.inference_model().unwrap(), 2)
            .iter()
            .all(|v| v.is_finite())
    );
}

#[test]
fn ceil_mode_pools_fine_tune() {
    let t = finetune("ceil_mode_pools", 4);
    assert!(
        inference_logits(&t.sess.inference_model().unwrap(), 2)
            .iter()
            .all(|v| v.is_finite())
    );
}

#[test]
fn bn_folded_export_fine_tunes() {
    let t = finetune("bn_folded", 4);
    assert!(
        inference_logits(&t.sess.inference_model().unwrap(), 2)
            .iter()
            .all(|v| v.is_finite())
    );
}
