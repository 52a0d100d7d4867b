//! Optimizer and BatchNorm state updates in the generated graph against the PyTorch formulas computed here.

use converters::Model;
use converters::autodiff::{Optimizer, StateKind, TrainStepConfig, build_train_step};
use converters::ir::build::{self, Attr, GraphBuilder};
use converters::proto::tensor_proto::DataType;
use ndarray::{ArrayD, IxDyn};
use toolkit::runtime::RuntimeConfig;
use toolkit::train::StepSession;

fn linear() -> Model {
    let mut b = GraphBuilder::new("lin");
    b.input("x", DataType::Float, &[None, Some(2)]);
    let w = b.init_f32("w", &[2, 3], &[0.3, -0.2, 0.1, 0.5, 0.05, -0.4]);
    let c = b.init_f32("c", &[3], &[0.1, 0.0, -0.1]);
    let y = b.op("Gemm", "logits", &["x", &w, &c], vec![]);
    b.output(&y, DataType::Float, &[None, Some(3)]);
    Model::new(build::model(b.finish(), "t"))
}

fn idx(s: &StepSession, name: &str, kind: StateKind) -> usize {
    s.step
        .state
        .iter()
        .position(|t| t.name == name && t.kind == kind)
        .unwrap()
}

/// Run 3 steps and replay them with the optimizer written out in Rust from the graph's own gradients.
fn replay(opt: Optimizer) {
    let step = build_train_step(
        &linear(),
        &TrainStepConfig {
            batch_size: 4,
            optimizer: opt,
            emit_gradients: true,
            ..Default::default()
        },
    )
    .unwrap();
    let grads: Vec<(String, String)> = step.grad_outputs.clone();
    let mut s = StepSession::new(step, &RuntimeConfig::cpu().with_threads(1)).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[4, 2]), vec![1.0, 2.0, -1.0, 0.5, 0.3, -0.7, 2.0, 1.0]).unwrap();
    let y = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0i64, 2, 1, 2]).unwrap();
    let lr = 0.1f32;
    let mut w: Vec<Vec<f32>> = vec![s.state[idx(&s, "w", StateKind::Param)].iter().copied().collect()];
    w.push(s.state[idx(&s, "c", StateKind::Param)].iter().copied().collect());
    let mut m1 = vec![vec![0f32; 6], vec![0f32; 3]];
    let mut m2 = m1.clone();
    for t in 1..=3 {
        let state = s.state.clone();
        let names: Vec<&str> = grads.iter().map(|(_, g)| g.as_str()).collect();
        let (_, gs) = s.evaluate(x.view(), y.view(), &state, &names).unwrap();
        for (k, (p, _)) in grads.iter().enumerate() {
            let pi = if p == "w" { 0 } else { 1 };
            let decay = pi == 0; // weights only, not the bias
            let g: Vec<f32> = gs[k].iter().copied().collect();
            for i in 0..g.len() {
                match opt {
                    Optimizer::Sgd {
                        momentum,
                        nesterov,
                        weight_decay,
                    } => {
                        let gi = g[i] + if decay { weight_decay * w[pi][i] } else { 0.0 };
                        m1[pi][i] = momentum * m1[pi][i] + gi;
                        let d = if nesterov { gi + momentum * m1[pi][i] } else { m1[pi][i] };
                        w[pi][i] -= lr * d;
                    }
                    Optimizer::Adamw {
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                    } => {
                        if decay {
                            w[pi][i] -= lr * weight_decay * w[pi][i];
                        }
                        m1[pi][i] = beta1 * m1[pi][i] + (1.0 - beta1) * g[i];
                        m2[pi][i] = beta2 * m2[pi][i] + (1.0 - beta2) * g[i] * g[i];
                        let mh = m1[pi][i] / (1.0 - beta1.powi(t));
                        let vh = m2[pi][i] / (1.0 - beta2.powi(t));
                        w[pi][i] -= lr * mh / (vh.sqrt() + eps);
                    }
                }
            }
        }
        s.train_step(x.view(), y.view(), lr).unwrap();
        for (pi, name) in ["w", "c"].iter().enumerate() {
            let got: Vec<f32> = s.state[idx(&s, name, StateKind::Param)].iter().copied().collect();
            for (a, b) in got.iter().zip(&w[pi]) {
                // Same float32 operations in a different order: a few ulps.
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{opt:?} step {t} {name}: graph {a} vs formula {b}"
                );
            }
        }
    }
}

#[test]
fn sgd_momentum_nesterov_and_weight_decay_follow_pytorch() {
    replay(Optimizer::Sgd {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    });
    replay(Optimizer::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.01,
    });
    replay(Optimizer::Sgd {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.01,
    });
}

#[test]
fn adamw_follows_pytorch() {
    replay(Optimizer::Adamw {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.05,
    });
}

#[test]
fn training_bn_updates_running_stats_with_the_unbiased_variance() {
    let mut b = GraphBuilder::new("bn");
    b.input("x", DataType::Float, &[None, Some(2), Some(2), Some(2)]);
    let w = b.init_f32("w", &[2, 2, 1, 1], &[1.0, 0.0, 0.0, 1.0]);
    let c = b.op("Conv", "c", &["x", &w], vec![]);
    let g = b.init_f32("g", &[2], &[1.0, 1.0]);
    let be = b.init_f32("b", &[2], &[0.0, 0.0]);
    let rm = b.init_f32("rm", &[2], &[0.5, -0.5]);
    let rv = b.init_f32("rv", &[2], &[2.0, 1.0]);
    let n = b.op(
        "BatchNormalization",
        "n",
        &[&c, &g, &be, &rm, &rv],
        vec![("momentum", Attr::Float(0.9))],
    );
    let p = b.op("GlobalAveragePool", "p", &[&n], vec![]);
    let f = b.op("Flatten", "logits", &[&p], vec![]);
    b.output(&f, DataType::Float, &[None, Some(2)]);
    let m = Model::new(build::model(b.finish(), "t"));
    let step = build_train_step(
        &m,
        &TrainStepConfig {
            batch_size: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = StepSession::new(step, &RuntimeConfig::cpu().with_threads(1)).unwrap();
    let xs: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
    let x = ArrayD::from_shape_vec(IxDyn(&[3, 2, 2, 2]), xs.clone()).unwrap();
    let y = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0i64, 1, 0]).unwrap();
    // lr → tiny so the identity conv barely moves; the statistics are of this step's (pre-update) activations.
    s.train_step(x.view(), y.view(), 1e-12).unwrap();
    for (ch, (rm0, rv0)) in [(0.5f64, 2.0f64), (-0.5, 1.0)].into_iter().enumerate() {
        let vals: Vec<f64> = (0..3)
            .flat_map(|nb| (0..4).map(move |k| (nb, k)))
            .map(|(nb, k)| xs[nb * 8 + ch * 4 + k] as f64)
            .collect();
        let mean = vals.iter().sum::<f64>() / 12.0;
        let var_u = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 11.0;
        let rm1 = s.state[idx(&s, "rm", StateKind::RunningMean)].as_slice().unwrap()[ch] as f64;
        let rv1 = s.state[idx(&s, "rv", StateKind::RunningVar)].as_slice().unwrap()[ch] as f64;
        assert!((rm1 - (0.9 * rm0 + 0.1 * mean)).abs() < 1e-6, "running mean {rm1}");
        assert!(
            (rv1 - (0.9 * rv0 + 0.1 * var_u)).abs() < 1e-6,
            "running var {rv1} (unbiased rule)"
        );
    }
}
