//! BN-kept and BN-folded twins after conversion: calibration brings both back to their source, and the folded
//! one then fine-tunes at the learning rate that trains its BN-kept twin (uncalibrated it diverges there), with
//! BatchNormalization reinserted for training and folded back on export.
//!
//! The twins are a ResNet-20 (width 0.5) for 1×28×28 inputs given MNIST statistics by AdaBN and 60 SGD steps
//! on MNIST, so its BN statistics and weights come from data as a pretrained checkpoint's do; the folded twin
//! is `models::fold_bn` of it. Both are converted at 2:1 (block scope, keep last: the first ReLU of every
//! residual block goes).

use std::sync::{Arc, OnceLock};

use converters::Model;
use converters::autodiff::{BnMode, Optimizer, TrainStepConfig, build_train_step};
use converters::convert::convert;
use converters::policy::Policy;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use ratio_testkit::shared;
use toolkit::calibrate::samples::{CalibData, SampleSpec};
use toolkit::calibrate::{CalibrateOptions, Calibrated, adabn, calibrate, reinsert};
use toolkit::data::loader::{OnCorrupt, load_batch};
use toolkit::data::preprocess::Preset;
use toolkit::data::{self, OpenOptions, Split};
use toolkit::runtime::{Feed, Runner, RuntimeConfig};
use toolkit::train::StepSession;

fn mnist() -> String {
    shared("data/mnist").display().to_string()
}

fn rt() -> RuntimeConfig {
    RuntimeConfig::cpu().with_threads(1)
}

/// The first 500 training images calibrate; 2,000 test images measure.
fn calib_data() -> CalibData {
    CalibData::open(&SampleSpec {
        data: mnist(),
        preset: "mnist".into(),
        samples: 500,
        eval_samples: Some(2000),
        batch: 100,
    })
    .unwrap()
}

type Batches = Vec<(Vec<f32>, Vec<i64>)>;

/// `n` batches of 64 MNIST training images from index `from` on (past the calibration samples).
fn batches(from: usize, n: usize) -> Batches {
    let ds: Arc<dyn data::Dataset> = Arc::from(
        data::open(
            &mnist(),
            &OpenOptions {
                split: Split::Train,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let preset = Preset::load("mnist").unwrap();
    (0..n)
        .map(|k| {
            let idx: Vec<usize> = (from + k * 64..from + (k + 1) * 64).collect();
            let b = load_batch(ds.as_ref(), &preset, &idx, OnCorrupt::Fail).unwrap();
            (b.data, b.labels)
        })
        .collect()
}

/// SGD (momentum 0.9) with BN in train mode: the session after `steps` steps cycling through `data`, and the
/// losses (stopping at the first non-finite one).
fn train(model: &Model, data: &Batches, lr: f32, steps: usize) -> (StepSession, Vec<f32>) {
    let cfg = TrainStepConfig {
        batch_size: 64,
        optimizer: Optimizer::default(),
        bn: BnMode::Train,
        ..Default::default()
    };
    let step = build_train_step(model, &cfg).unwrap();
    let mut sess = StepSession::new(step, &rt()).unwrap();
    let mut losses = Vec::new();
    for s in 0..steps {
        let (x, y) = &data[s % data.len()];
        let xv = ArrayViewD::from_shape(IxDyn(&[64, 1, 28, 28]), x).unwrap();
        let yv = ArrayViewD::from_shape(IxDyn(&[64]), y).unwrap();
        let loss = sess.train_step(xv, yv, lr).unwrap().loss;
        losses.push(loss);
        if !loss.is_finite() {
            break;
        }
    }
    (sess, losses)
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

/// Finite throughout, and the last five steps' mean loss below the first five's.
fn assert_trains(what: &str, losses: &[f32]) {
    assert!(losses.iter().all(|l| l.is_finite()), "{what}: {losses:?}");
    let (first, last) = (mean(&losses[..5]), mean(&losses[losses.len() - 5..]));
    assert!(last < first - 0.05, "{what}: loss {first} → {last}: {losses:?}");
}

fn logits(model: &Model, x: &[f32]) -> ArrayD<f32> {
    let mut r = Runner::from_model(model, &rt()).unwrap();
    let n = x.len() / 784;
    let xv = ArrayViewD::from_shape(IxDyn(&[n, 1, 28, 28]), x).unwrap();
    r.run(&[("input", Feed::F32(xv))]).unwrap().take("logits").unwrap()
}

fn max_rel_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b.iter()).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

struct Twins {
    folded21: Model,
    kept_cal: Calibrated,
    folded_cal: Calibrated,
    train: Batches,
}

fn twins() -> &'static Twins {
    static T: OnceLock<Twins> = OnceLock::new();
    T.get_or_init(|| {
        let cfg = models::ModelConfig::new(1, 28, 10).with_seed(7).with_width(0.5);
        let fresh = Model::new(models::resnet20(&cfg).unwrap());
        let mut data = calib_data();
        let (stats, _) = adabn::adabn(&fresh, &mut data, "input", &rt()).unwrap();
        let (sess, _) = train(&stats, &batches(20_000, 80), 0.05, 80);
        // Running statistics lag the weights after a short run; re-estimate them as a finished checkpoint has.
        let (kept, _) = adabn::adabn(&sess.inference_model().unwrap(), &mut data, "input", &rt()).unwrap();
        let folded = Model::new(models::fold_bn(&kept.proto).unwrap());
        let kept21 = convert(&kept, &Policy::default(), None).unwrap().model;
        let folded21 = convert(&folded, &Policy::default(), None).unwrap().model;
        let opts = CalibrateOptions::default();
        let kept_cal = calibrate(&kept21, Some(&kept), &mut data, &opts).unwrap();
        let folded_cal = calibrate(&folded21, Some(&folded), &mut data, &opts).unwrap();
        Twins {
            folded21,
            kept_cal,
            folded_cal,
            train: batches(10_000, 8),
        }
    })
}

#[test]
fn both_twins_are_brought_back_to_their_source() {
    let t = twins();
    let source = t.kept_cal.reference_stage.as_ref().unwrap();
    assert!(
        source.top1.unwrap() > 0.85,
        "the pretrained twin learned MNIST: {source:?}"
    );
    for (what, c) in [("kept", &t.kept_cal), ("folded", &t.folded_cal)] {
        let (b, a) = (&c.before, &c.after);
        eprintln!("{what}: source {source:?}\n  before {b:?}\n  after {a:?}");
        assert!(a.agreement.unwrap() > b.agreement.unwrap(), "{what}: {b:?} → {a:?}");
        // The bar is the fixture's, not a law: with the train-step numerics of the merged speed work the BN-kept
        // twin's AdaBN lands at 0.77 agreement (0.855 before), the folded twin's least squares higher.
        assert!(a.agreement.unwrap() > 0.7, "{what}: {a:?}");
        assert!(
            a.agreement.unwrap() > b.agreement.unwrap() + 0.4,
            "{what}: {b:?} → {a:?}"
        );
        assert!(
            a.mean_rel_logit_error.unwrap() < 0.5 * b.mean_rel_logit_error.unwrap(),
            "{what}: {b:?} → {a:?}"
        );
        assert!(
            (a.top1.unwrap() - source.top1.unwrap()).abs() < 0.2,
            "{what}: {a:?} vs {source:?}"
        );
    }
    // BN kept: AdaBN for every BatchNormalization, least squares for the classifier only.
    let methods = |c: &Calibrated| c.layers.iter().map(|l| l.method.clone()).collect::<Vec<_>>();
    let kept = methods(&t.kept_cal);
    assert_eq!(kept.iter().filter(|m| *m == "adabn").count(), 21);
    assert_eq!(kept.last().map(String::as_str), Some("lsq"));
    assert_eq!(t.kept_cal.layers.last().unwrap().op, "Gemm");
    // BN folded: every conv after the first removed ReLU, and the classifier, refit by least squares.
    let folded = methods(&t.folded_cal);
    assert!(folded.len() >= 18 && folded.iter().all(|m| m == "lsq"), "{folded:?}");
    assert_eq!(t.folded_cal.removed.len(), 9);
    // Without renormalisation the folded 2:1 logits grow; calibration brings them to the source's scale.
    let (b, a) = (&t.folded_cal.before, &t.folded_cal.after);
    assert!(b.max_abs_logit > 2.0 * a.max_abs_logit, "{b:?} → {a:?}");
}

#[test]
fn calibrated_folded_model_finetunes_at_the_lr_of_its_bn_kept_twin() {
    let t = twins();
    let mut data = calib_data();
    let (with_bn, _) = reinsert::reinsert(&t.folded_cal.model, &mut data, &rt()).unwrap();
    for lr in [0.1, 0.001] {
        let (_, kept) = train(&t.kept_cal.model, &t.train, lr, 24);
        assert_trains(&format!("BN-kept twin, calibrated, lr {lr}"), &kept);
        // The failure, reproduced: the folded twin straight from conversion diverges at the twin's lr
        // (at 0.001 it may limp along from a loss of ~30; the claim is about the lr that trains the twin).
        if lr >= 0.1 {
            let (_, raw) = train(&t.folded21, &t.train, lr, 24);
            assert!(
                raw.iter().any(|l| !l.is_finite()),
                "uncalibrated folded twin, lr {lr}: {raw:?}"
            );
        }
        // Calibrated, with BatchNormalization reinserted for training (`finetune --bn reinsert`), it trains.
        let (_, folded) = train(&with_bn, &t.train, lr, 24);
        assert_trains(&format!("BN-folded twin, calibrated, BN reinserted, lr {lr}"), &folded);
    }
    // Calibrated alone, plain SGD on the BN-free graph stays finite at the fine-tuning lr. It does not train
    // there (nor does the unconverted folded source at 0.1): without BN the step is too large for this net.
    let (_, plain) = train(&t.folded_cal.model, &t.train, 0.001, 24);
    assert!(plain.iter().all(|l| l.is_finite()), "{plain:?}");
}

#[test]
fn reinserted_bn_starts_as_the_identity_trains_and_folds_back() {
    let t = twins();
    let mut data = calib_data();
    let (with_bn, inserted) = reinsert::reinsert(&t.folded_cal.model, &mut data, &rt()).unwrap();
    assert_eq!(inserted.len(), 21);
    let bns = |m: &Model| {
        m.graph()
            .node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some("BatchNormalization"))
            .count()
    };
    assert_eq!(bns(&with_bn), 21);
    let x = &t.train[0].0;
    let base = logits(&t.folded_cal.model, x);
    assert!(max_rel_diff(&logits(&with_bn, x), &base) < 1e-4);

    let (sess, losses) = train(&with_bn, &t.train, 0.1, 24);
    assert_trains("folded twin with reinserted BN", &losses);
    let trained = sess.inference_model().unwrap();
    let exported = reinsert::fold_back_hook()(&trained).unwrap();
    assert_eq!(bns(&exported), 0);
    let ops = |m: &Model| m.graph().node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>();
    assert_eq!(ops(&exported), ops(&t.folded_cal.model));
    assert!(
        exported
            .metadata("ratio.finetune.bn")
            .unwrap()
            .contains("folded back 21")
    );
    // Folding is exact up to float rounding: the exported model computes what the trained one does.
    assert!(max_rel_diff(&logits(&exported, x), &logits(&trained, x)) < 1e-4);
    // And it is not the model it started from.
    assert!(max_rel_diff(&logits(&exported, x), &base) > 1e-3);

    // A model that has BatchNormalization is refused, naming it.
    let e = reinsert::reinsert(&t.kept_cal.model, &mut data, &rt())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--bn reinsert is for BN-folded models") && e.contains("21 BatchNormalization"),
        "{e}"
    );
}

#[test]
fn finetune_bn_reinsert_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("mnist_cnn.onnx");
    std::fs::copy(shared("models/mnist_cnn.onnx"), &src).unwrap();
    let ratio = |args: &[&str]| ratio_testkit::ratio!().args(args).run();
    let s = |p: &std::path::Path| p.display().to_string();
    let out = dir.path().join("run");
    let common = [
        "--data",
        &mnist(),
        "--preset",
        "mnist",
        "--lr",
        "0.02",
        "--epochs",
        "1",
        "--batch",
        "64",
        "--train-limit",
        "256",
        "--no-progress",
        "--bn",
        "reinsert",
        "--out",
    ];
    let mut args = vec!["finetune".to_string(), s(&src)];
    args.extend(common.iter().map(|a| a.to_string()));
    args.push(s(&out));
    let o = ratio(&args.iter().map(String::as_str).collect::<Vec<_>>());
    o.success();
    let m = Model::load(out.join("model.onnx")).unwrap();
    assert!(
        m.graph()
            .node
            .iter()
            .all(|n| n.op_type.as_deref() != Some("BatchNormalization"))
    );
    assert_eq!(
        m.metadata("ratio.finetune.bn"),
        Some("reinsert (folded back 3 BatchNormalization)")
    );
    let src_model = Model::load(&src).unwrap();
    let ops = |m: &Model| m.graph().node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>();
    assert_eq!(ops(&m), ops(&src_model));

    // --bn reinsert on a model with BatchNormalization: one line naming the file, nothing written.
    let kept = dir.path().join("plain_bn.onnx");
    let p = models::plain_cnn(&models::PlainConfig::new(models::ModelConfig::new(1, 28, 10))).unwrap();
    std::fs::write(&kept, prost::Message::encode_to_vec(&p)).unwrap();
    let out2 = dir.path().join("run2");
    let mut args = vec!["finetune".to_string(), s(&kept)];
    args.extend(common.iter().map(|a| a.to_string()));
    args.push(s(&out2));
    let o = ratio(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = &o.stderr;
    assert!(!o.succeeded());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("plain_bn.onnx: --bn reinsert is for BN-folded models"),
        "{err}"
    );
    assert!(!out2.exists());
}

#[test]
fn adabn_is_the_cumulative_average_of_batch_statistics_with_unbiased_variance() {
    use converters::ir::build::{self, Attr, GraphBuilder};
    use converters::ir::tensor;
    use converters::proto::tensor_proto::DataType;
    // input → Conv(3 channels, 3×3) → BN → Relu → GlobalAveragePool → Flatten → Gemm(10).
    let mut b = GraphBuilder::new("bn");
    let x = b.input("input", DataType::Float, &[None, Some(1), Some(28), Some(28)]);
    let w: Vec<f32> = (0..27).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect();
    let w = b.init_f32("w", &[3, 1, 3, 3], &w);
    let c = b.op("Conv", "conv", &[&x, &w], vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    let (g, be) = (
        b.init_f32("g", &[3], &[1.0, 2.0, 0.5]),
        b.init_f32("b", &[3], &[0.0, 0.1, -0.1]),
    );
    let (m, v) = (b.init_f32("m", &[3], &[0.0; 3]), b.init_f32("v", &[3], &[1.0; 3]));
    let bn = b.op("BatchNormalization", "bn", &[&c, &g, &be, &m, &v], vec![]);
    let r = b.op("Relu", "relu", &[&bn], vec![]);
    let p = b.op("GlobalAveragePool", "gap", &[&r], vec![]);
    let f = b.op("Flatten", "flat", &[&p], vec![]);
    let fw = b.init_f32("fw", &[3, 10], &[0.1; 30]);
    let y = b.op("Gemm", "fc", &[&f, &fw], vec![]);
    b.output(&y, DataType::Float, &[None, Some(10)]);
    let model = Model::new(build::model(b.finish(), "test"));

    let mut data = calib_data();
    let (out, fits) = adabn::adabn(&model, &mut data, "input", &rt()).unwrap();
    assert_eq!(fits.len(), 1);
    assert_eq!(fits[0].rows, 500);
    // The same statistics by hand: the conv output of each batch of 100, averaged over the 5 batches.
    let mut probe = model.clone();
    converters::ir::expose::expose_outputs(&mut probe, std::slice::from_ref(&c)).unwrap();
    let mut runner = Runner::from_model(&probe, &rt()).unwrap();
    let (mut mean, mut var) = (vec![0f64; 3], vec![0f64; 3]);
    data.for_each_calib(|x| {
        let y = runner
            .run_select(&[("input", Feed::F32(x.view()))], &[c.as_str()])?
            .take(&c)?;
        for ch in 0..3 {
            let vals: Vec<f64> = y.index_axis(ndarray::Axis(1), ch).iter().map(|&v| v as f64).collect();
            let n = vals.len() as f64;
            let mu = vals.iter().sum::<f64>() / n;
            mean[ch] += mu / 5.0;
            var[ch] += vals.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (n - 1.0) / 5.0;
        }
        Ok(())
    })
    .unwrap();
    let stat = |name: &str| {
        let g = out.graph();
        let bn = g.node.iter().find(|n| n.name.as_deref() == Some(name)).unwrap();
        let t = |i: usize| {
            g.initializer
                .iter()
                .find(|t| t.name.as_deref() == Some(bn.input[i].as_str()))
                .unwrap()
        };
        (
            tensor::to_f32(t(3), None).unwrap(),
            tensor::to_f32(t(4), None).unwrap(),
            tensor::to_f32(t(1), None).unwrap(),
        )
    };
    let (m, v, gamma) = stat(&model.graph().node[1].name.clone().unwrap());
    for ch in 0..3 {
        assert!(
            (m[ch] as f64 - mean[ch]).abs() < 1e-4 * (1.0 + mean[ch].abs()),
            "{m:?} vs {mean:?}"
        );
        assert!((v[ch] as f64 - var[ch]).abs() < 1e-4 * var[ch], "{v:?} vs {var:?}");
    }
    // γ and β are unchanged; the statistics are the model's only change.
    assert_eq!(gamma, vec![1.0, 2.0, 0.5]);
    assert_eq!(out.graph().node.len(), model.graph().node.len());
}
