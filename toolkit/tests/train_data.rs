//! `ratio finetune` / `ratio train` read data through `toolkit::data` and its presets, like `ratio eval`: the
//! known MNIST answer through the new path, the identity and preset fingerprint in every output, the hold-out
//! rule for `--split test`, and clear errors for presets that cannot feed the model.

use std::path::Path;

use converters::Model;
use ratio_testkit::{Run, shared};
use reports::schema::Record;
use reports::schema::train::{MetricsLine, TrainBody, parse_metrics};
use toolkit::data::preprocess::Preset;
use toolkit::data::{OpenOptions, Split};
use toolkit::train::data::{DataSpec, load};

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!()
        .args(args)
        .args(["--threads", "2", "--no-progress"])
        .run()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn finetune_on_real_mnist_through_the_data_layer_keeps_the_known_answer() {
    let model = shared("models/mnist_cnn.onnx");
    let data = shared("data/mnist");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ft");
    let o = ratio(&[
        "finetune",
        &s(&model),
        "--data",
        &s(&data),
        "--preset",
        "mnist",
        "--epochs",
        "1",
        "--batch",
        "64",
        "--lr",
        "0.001",
        "--train-limit",
        "640",
        "--json",
        "-",
        "-o",
        &s(&out),
    ]);
    o.success();
    let rec = Record::from_json(&o.stdout).unwrap();
    assert_eq!(rec.schema, "ratio/train/v1");
    let r: TrainBody = rec.body_as().unwrap();
    // 99.06 % before any step is the published answer for x/255 then (x−0.1307)/0.3081 on the 10k test set:
    // the data layer's reader and `mnist` preset feed the loop exactly what eval feeds the model.
    let before = r.initial_val_acc.unwrap();
    assert!((before - 0.9906).abs() < 1e-9, "initial val acc {before}");
    let after = r.final_val_acc;
    assert!(after >= 0.98, "10 small steps should not wreck the model: {after}");
    assert_eq!(r.epochs.len(), 1);
    // The record pins the model trained from and the models written.
    assert_eq!(rec.inputs[0].sha256, r.model_sha256);
    assert_eq!(
        rec.outputs[0].sha256,
        converters::ir::model::sha256_file(&out.join("model.onnx")).unwrap()
    );
    assert_eq!(rec.provenance.ort_version.as_deref(), Some("1.31.1"));
    // Which convolution kernels ran changes float summation order, so the record says (this process probes the
    // same ORT library the binary did).
    assert_eq!(
        r.nchwc_block,
        toolkit::runtime::nchwc::block(&toolkit::runtime::RuntimeConfig::cpu())
    );

    let fp = Preset::load("mnist").unwrap().fingerprint();
    let train_ds = toolkit::data::open(
        &s(&data),
        &OpenOptions {
            format: None,
            split: Split::Train,
        },
    )
    .unwrap();
    assert_eq!(r.data.preset_fingerprint, fp.as_str());
    assert_eq!(r.data.sha256, train_ds.identity().sha256.as_str());
    assert_eq!(r.data.split, "train");
    assert_eq!(r.data.count, 60_000);
    assert_eq!(r.val_data.split, "test");
    assert_eq!(r.val_data.count, 10_000);
    assert_ne!(r.val_data.sha256, r.data.sha256);
    assert_eq!(r.metrics_path, out.join("metrics.jsonl").display().to_string());

    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let epoch: serde_json::Value = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "epoch")
        .unwrap();
    assert_eq!(epoch["preset_fingerprint"], fp.as_str());
    assert_eq!(epoch["preprocess"], "mnist");
    // 640 samples in batches of 64: 10 steps, each logged (fewer than 50 per epoch), with the typed schema.
    let steps: Vec<_> = parse_metrics(&metrics)
        .unwrap()
        .into_iter()
        .filter_map(|l| match l {
            MetricsLine::Step(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps.iter().map(|s| s.step).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    // The learning rate is an f32 (0.001 is 0.0010000000475 as f64).
    assert!(
        steps
            .iter()
            .all(|s| s.loss.is_finite() && (0.0..=1.0).contains(&s.train_acc) && (s.lr - 0.001).abs() < 1e-9)
    );
    let m = Model::load(out.join("model.onnx")).unwrap();
    assert_eq!(m.metadata("ratio.finetune.preset_fingerprint"), Some(fp.as_str()));
    assert_eq!(
        m.metadata("ratio.finetune.data_sha256"),
        Some(train_ds.identity().sha256.as_str())
    );
}

#[test]
fn split_test_holds_out_every_fifth_sample_with_the_fashion_preset() {
    let data = shared("data/mnist");
    let mut spec = DataSpec::new(&s(&data), "fashion-mnist").unwrap();
    spec.split = Split::Test;
    let (tr, va) = load(&spec).unwrap();
    assert_eq!((tr.len(), va.len()), (8000, 2000));
    assert_eq!(tr.sample_shape, [1, 28, 28]);
    assert!(tr.info.split.starts_with("test, train"), "{}", tr.info.split);
    assert!(va.info.split.starts_with("test, validation"), "{}", va.info.split);
    // Sample 4 of the test split is the first held-out one; its label is MNIST's fifth test label (4).
    assert_eq!(va.y[0], 4);
    assert_eq!(tr.y[..4], [7, 2, 1, 0]);
    // Background pixels (0) become (0/255 − 0.2860)/0.3530 under the fashion-mnist preset.
    let lo = tr.sample(0).unwrap().iter().copied().fold(f32::INFINITY, f32::min);
    assert!((lo - (-0.2860 / 0.3530)).abs() < 1e-6, "{lo}");
    assert_eq!(tr.info.preset_fingerprint, va.info.preset_fingerprint);
    assert_ne!(tr.info.preset_fingerprint, Preset::load("mnist").unwrap().fingerprint());
}

#[test]
fn presets_that_cannot_feed_the_model_fail_clearly() {
    let model = s(&shared("models/mnist_cnn.onnx"));
    let data = s(&shared("data/mnist"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let run = |preset: &str| {
        ratio(&[
            "finetune",
            &model,
            "--data",
            &data,
            "--preset",
            preset,
            "--lr",
            "0.01",
            "-o",
            &s(&out),
        ])
    };
    for (preset, needle) in [
        ("imagenet-torchvision", "mean has 3 values for a 1-channel image"),
        ("no-such-preset", "no-such-preset"),
    ] {
        run(preset).fails(&[needle]);
    }
    assert!(!out.exists(), "nothing may be written for rejected input");
    let o = ratio(&[
        "finetune",
        &model,
        "--data",
        "/no/such/data",
        "--preset",
        "mnist",
        "--lr",
        "0.01",
        "-o",
        &s(&out),
    ]);
    let e = &o.stderr;
    assert!(!o.succeeded() && e.contains("/no/such/data"), "{e}");
}

#[test]
fn train_from_scratch_on_digits_holds_out_a_fifth_through_the_cli() {
    let data = shared("data/digits.csv.gz");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tr");
    let o = ratio(&[
        "train",
        "--model",
        "plain",
        "--init-seed",
        "1",
        "--data",
        &s(&data),
        "--preset",
        "digits",
        "--epochs",
        "3",
        "--batch",
        "32",
        "--lr",
        "0.05",
        "--json",
        "-",
        "-o",
        &s(&out),
    ]);
    o.success();
    let rec = Record::from_json(&o.stdout).unwrap();
    let r: TrainBody = rec.body_as().unwrap();
    // 1797 rows: indices 4, 9, …, 1794 validate.
    assert_eq!((r.data.count, r.val_data.count), (1438, 359));
    assert_eq!(r.data.format, "csv");
    assert_eq!(
        r.data.preset_fingerprint,
        Preset::load("digits").unwrap().fingerprint().as_str()
    );
    assert!(rec.inputs.is_empty(), "a built-in network is trained from no file");
    let before = r.initial_val_acc.unwrap();
    let after = r.final_val_acc;
    assert!(
        before < 0.3 && after > 0.8,
        "untrained {before}, after 3 epochs {after}"
    );
    assert!(out.join("model.onnx").is_file() && out.join("metrics.jsonl").is_file());
}
