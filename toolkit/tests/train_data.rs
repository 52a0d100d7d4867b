//! `ratio finetune` / `ratio train` read data through `toolkit::data` and its presets, like `ratio eval`: the
//! known MNIST answer through the new path, the identity and preset fingerprint in every output, the hold-out
//! rule for `--split test`, and clear errors for presets that cannot feed the model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use converters::Model;
use toolkit::data::preprocess::Preset;
use toolkit::data::{OpenOptions, Split};
use toolkit::train::data::{DataSpec, load};

fn shared(rel: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("shared/{rel} not found above {}", here.display()))
}

fn ratio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratio"))
        .args(args)
        .args(["--threads", "2", "--no-progress"])
        .output()
        .unwrap()
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
        "-o",
        &s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 99.06 % before any step is the published answer for x/255 then (x−0.1307)/0.3081 on the 10k test set:
    // the data layer's reader and `mnist` preset feed the loop exactly what eval feeds the model.
    let before = r["initial_val_acc"].as_f64().unwrap();
    assert!((before - 0.9906).abs() < 1e-9, "initial val acc {before}");
    let after = r["final_val_acc"].as_f64().unwrap();
    assert!(after >= 0.98, "10 small steps should not wreck the model: {after}");
    assert_eq!(r["epochs"].as_array().unwrap().len(), 1);

    let id = &r["identity"];
    let fp = Preset::load("mnist").unwrap().fingerprint();
    let train_ds = toolkit::data::open(
        &s(&data),
        &OpenOptions {
            format: None,
            split: Split::Train,
        },
    )
    .unwrap();
    assert_eq!(id["data"]["preset_fingerprint"], fp.as_str());
    assert_eq!(id["data"]["sha256"], train_ds.identity().sha256.as_str());
    assert_eq!(id["data"]["split"], "train");
    assert_eq!(id["data"]["count"], 60_000);
    assert_eq!(id["val_data"]["split"], "test");
    assert_eq!(id["val_data"]["count"], 10_000);
    assert_ne!(id["val_data"]["sha256"], id["data"]["sha256"]);

    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let epoch: serde_json::Value = serde_json::from_str(metrics.lines().nth(1).unwrap()).unwrap();
    assert_eq!(epoch["preset_fingerprint"], fp.as_str());
    assert_eq!(epoch["preprocess"], "mnist");
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
        let o = run(preset);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{preset}: {e}");
        assert!(!e.contains("panicked"), "{e}");
        assert!(e.contains(needle), "{preset}: missing '{needle}' in {e}");
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
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("/no/such/data"), "{e}");
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
        "-o",
        &s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = &r["identity"];
    // 1797 rows: indices 4, 9, …, 1794 validate.
    assert_eq!(
        (id["data"]["count"].as_u64(), id["val_data"]["count"].as_u64()),
        (Some(1438), Some(359))
    );
    assert_eq!(id["data"]["format"], "csv");
    assert_eq!(
        id["data"]["preset_fingerprint"],
        Preset::load("digits").unwrap().fingerprint().as_str()
    );
    let before = r["initial_val_acc"].as_f64().unwrap();
    let after = r["final_val_acc"].as_f64().unwrap();
    assert!(
        before < 0.3 && after > 0.8,
        "untrained {before}, after 3 epochs {after}"
    );
    assert!(out.join("model.onnx").is_file() && out.join("metrics.jsonl").is_file());
}
