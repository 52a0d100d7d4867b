//! `ratio calibrate` and `ratio convert --calibrate-data` on the real MNIST CNN and MNIST, as a user runs them:
//! the 2:1 conversion with every removable ReLU removed goes from 81% back to ≥ 98% top-1 on the test set with
//! no gradient step, provenance lands in the model and the record, and every bad input gets one error line
//! naming the file, a non-zero exit and nothing written.

use std::path::{Path, PathBuf};

use converters::Model;
use prost::Message;
use ratio_testkit::{Run, shared};
use reports::schema::Record;
use reports::schema::calibrate::CalibrateBody;

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!().args(args).run()
}

fn mnist_data() -> String {
    shared("data/mnist").display().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// mnist_cnn.onnx copied into `dir` and converted there at 2:1 (global, no protection: 4 → 2 ReLUs), so the
/// converted model's recorded source sits beside it.
fn converted(dir: &Path) -> PathBuf {
    let out = dir.join("mnist21.onnx");
    convert_2_1(dir, &out, &[]).success();
    out
}

/// `ratio convert` of a copy of mnist_cnn.onnx in `dir` at 2:1, global, no protection, to `out`, plus `extra`.
fn convert_2_1(dir: &Path, out: &Path, extra: &[&str]) -> Run {
    let src = dir.join("mnist_cnn.onnx");
    std::fs::copy(shared("models/mnist_cnn.onnx"), &src).unwrap();
    let args = [
        "convert",
        s(&src),
        "--ratio",
        "2:1",
        "--scope",
        "global",
        "--no-protect-stem",
        "--no-protect-head",
        "-o",
        s(out),
    ];
    ratio(&[&args[..], extra].concat())
}

fn record(path: &Path) -> CalibrateBody {
    let text = std::fs::read_to_string(path).unwrap();
    Record::from_json(&text).unwrap().body_as::<CalibrateBody>().unwrap()
}

#[test]
fn mnist_cnn_at_2_1_recovers_98_percent_without_a_gradient_step() {
    let dir = tempfile::tempdir().unwrap();
    let model = converted(dir.path());
    let before_bytes = std::fs::read(&model).unwrap();
    let json = dir.path().join("calibrate.json");
    let o = ratio(&[
        "calibrate",
        s(&model),
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--json",
        s(&json),
    ]);
    o.success();
    let b = record(&json);
    // The setup of DESIGN.md §7: 81.37% before on the 10k test images, the source at 99.06%.
    assert_eq!(b.before.samples, 10_000);
    assert!((b.before.top1.unwrap() - 0.8137).abs() < 5e-4, "{:?}", b.before);
    assert!((b.reference_stage.as_ref().unwrap().top1.unwrap() - 0.9906).abs() < 5e-4);
    let after = b.after.top1.unwrap();
    assert!(after >= 0.98, "top-1 after calibration {after}");
    let (ab, aa) = (b.before.agreement.unwrap(), b.after.agreement.unwrap());
    assert!(aa >= 0.98 && aa > ab, "agreement {ab} → {aa}");
    assert!(b.after.mean_rel_logit_error.unwrap() < 0.5 * b.before.mean_rel_logit_error.unwrap());
    assert_eq!(b.held_out, "the first 10000 samples of the test split");
    assert_eq!(b.data.split.as_deref(), Some("train"));
    assert_eq!(b.eval_data.split.as_deref(), Some("test"));
    // The default: the first 2,000 training images.
    assert_eq!(b.samples, 2000);
    assert_eq!(
        b.removed,
        vec!["/conv_layers/conv_layers.1/Relu", "/conv_layers/conv_layers.4/Relu"]
    );
    // Every linear layer after the first removed ReLU is refit and fits better than before: least squares,
    // except the first FC layer, whose 1,153 features are more than half the 2,000 rows (affine there).
    let fitted: Vec<&str> = b.layers.iter().map(|l| l.node.as_str()).collect();
    assert_eq!(
        fitted,
        vec![
            "/conv_layers/conv_layers.3/Conv",
            "/conv_layers/conv_layers.6/Conv",
            "/fc_layers/fc_layers.0/Gemm",
            "/fc_layers/fc_layers.2/Gemm"
        ]
    );
    let methods: Vec<&str> = b.layers.iter().map(|l| l.method.as_str()).collect();
    assert_eq!(methods, vec!["lsq", "lsq", "affine", "lsq"]);
    for l in &b.layers {
        assert!(l.rel_error_after.unwrap() < l.rel_error_before.unwrap(), "{l:?}");
    }
    assert_eq!(b.layers[0].features, Some(32 * 9 + 1));

    // The input is untouched; the output has the converted graph's ops with new weights and the provenance.
    assert_eq!(std::fs::read(&model).unwrap(), before_bytes);
    let out = dir.path().join("mnist21.calibrated.onnx");
    assert_eq!(b.output, out.display().to_string());
    let (m, c) = (Model::load(&model).unwrap(), Model::load(&out).unwrap());
    let ops = |m: &Model| {
        m.graph()
            .node
            .iter()
            .map(|n| (n.op_type.clone(), n.input.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ops(&m), ops(&c));
    assert_ne!(m.graph().initializer, c.graph().initializer);
    assert_eq!(c.source_sha256.as_deref(), Some(b.output_sha256.as_str()));
    assert_eq!(c.metadata("ratio.calibrate.method"), Some("auto"));
    assert_eq!(c.metadata("ratio.calibrate.samples"), Some("2000"));
    assert_eq!(c.metadata("ratio.calibrate.data_sha256"), Some(b.data.sha256.as_str()));
    assert_eq!(
        c.metadata("ratio.calibrate.preset_fingerprint"),
        Some(b.data.preset_fingerprint.as_str())
    );
    let src_sha = Model::load(shared("models/mnist_cnn.onnx")).unwrap().source_sha256;
    assert_eq!(c.metadata("ratio.calibrate.reference_sha256"), src_sha.as_deref());
    assert_eq!(b.reference_sha256, src_sha);
    // The conversion's own provenance is kept.
    assert_eq!(c.metadata("ratio.ratio"), Some("2:1"));

    // Running again without --force keeps the output.
    let o = ratio(&["calibrate", s(&model), "--data", &mnist_data(), "--preset", "mnist"]);
    o.fails_in_one_line(&["mnist21.calibrated.onnx: output exists"]);
}

#[test]
fn affine_matching_alone_recovers_most_of_the_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let model = converted(dir.path());
    let json = dir.path().join("affine.json");
    let o = ratio(&[
        "calibrate",
        s(&model),
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--method",
        "affine",
        "--samples",
        "2000",
        "--eval-samples",
        "5000",
        "--json",
        s(&json),
    ]);
    o.success();
    let b = record(&json);
    assert_eq!(b.before.samples, 5000);
    let (before, after) = (b.before.top1.unwrap(), b.after.top1.unwrap());
    // Prototype figure: 95.7% on the full test set with 2,000 images.
    assert!(before < 0.85 && after > 0.94, "{before} → {after}");
    assert!(b.layers.iter().all(|l| l.method == "affine" && l.features.is_none()));
    // Matching mean and std per channel shrinks the second conv's error the most (its input lost a ReLU and
    // the output scale grew).
    let conv6 = &b.layers[1];
    assert!(
        conv6.rel_error_before.unwrap() > 2.0 && conv6.rel_error_after.unwrap() < 0.7,
        "{conv6:?}"
    );
}

#[test]
fn convert_with_calibrate_data_writes_the_calibrated_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.onnx");
    let data = mnist_data();
    let calibrate = [
        "--calibrate-data",
        data.as_str(),
        "--calibrate-preset",
        "mnist",
        "--calibrate-samples",
        "1000",
    ];
    let o = convert_2_1(dir.path(), &out, &calibrate);
    o.success();
    assert!(o.stderr.contains("calibrated on 1000 samples"), "{}", o.stderr);
    let m = Model::load(&out).unwrap();
    assert_eq!(m.metadata("ratio.ratio"), Some("2:1"));
    assert_eq!(m.metadata("ratio.calibrate.samples"), Some("1000"));
    assert_eq!(m.metadata("ratio.calibrate.method"), Some("auto"));
    let o = ratio(&[
        "eval",
        s(&out),
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--limit",
        "2000",
        "--json",
        "-",
        "--no-progress",
    ]);
    o.success();
    let rec = Record::from_json(&o.stdout).unwrap();
    let top1 = rec.body["models"][0]["top1"].as_f64().unwrap();
    assert!(top1 > 0.96, "converted + calibrated top-1 {top1}");

    // Without a preprocessing preset the request is refused before anything is written.
    let out2 = dir.path().join("d.onnx");
    let src = dir.path().join("mnist_cnn.onnx");
    let o = ratio(&["convert", s(&src), "-o", s(&out2), "--calibrate-data", &mnist_data()]);
    o.fails_in_one_line(&["--calibrate-data needs --calibrate-preset"]);
    assert!(!out2.exists());
}

#[test]
fn bad_inputs_are_one_line_naming_the_file_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = converted(dir.path());
    let out = dir.path().join("never.onnx");
    let data = mnist_data();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "calibrate",
            s(&model),
            "--data",
            &data,
            "--preset",
            "mnist",
            "-o",
            s(&out),
        ];
        args.extend_from_slice(extra);
        ratio(&args)
    };
    let run_on = |m: &Path, extra: &[&str]| {
        let mut args = vec!["calibrate", s(m), "--data", &data, "--preset", "mnist", "-o", s(&out)];
        args.extend_from_slice(extra);
        ratio(&args)
    };

    // Data that does not fit: 8×8 digits for a 28×28 model.
    let digits = shared("data/digits.csv.gz");
    let o = ratio(&[
        "calibrate",
        s(&model),
        "--data",
        s(&digits),
        "--preset",
        "digits",
        "-o",
        s(&out),
        "--samples",
        "1000",
    ]);
    o.fails_in_one_line(&["digits.csv.gz: calibration data does not fit", "mnist21.onnx"]);
    // A set without a test split that calibration would use up leaves nothing to measure on.
    let o = ratio(&[
        "calibrate",
        s(&model),
        "--data",
        s(&digits),
        "--preset",
        "digits",
        "-o",
        s(&out),
    ]);
    o.fails_in_one_line(&["digits.csv.gz: all 1797 samples are used for calibration"]);

    // Labels outside the model's classes: a 5-class plain CNN on 10-class MNIST.
    let five = dir.path().join("five.onnx");
    let p = models::plain_cnn(&models::PlainConfig::new(models::ModelConfig::new(1, 28, 5))).unwrap();
    std::fs::write(&five, p.encode_to_vec()).unwrap();
    let five21 = dir.path().join("five21.onnx");
    let o = ratio(&[
        "convert",
        s(&five),
        "--ratio",
        "2:1",
        "--scope",
        "global",
        "--no-protect-stem",
        "-o",
        s(&five21),
    ]);
    o.success();
    let o = run_on(&five21, &[]);
    o.fails_in_one_line(&["outside the 5 classes of", "data/mnist"]);

    // A reference whose tensors do not line up: another network with the same input and output names.
    let plain = dir.path().join("plain.onnx");
    let p = models::plain_cnn(&models::PlainConfig::new(models::ModelConfig::new(1, 28, 10))).unwrap();
    std::fs::write(&plain, p.encode_to_vec()).unwrap();
    let o = run(&["--reference", s(&plain)]);
    o.fails_in_one_line(&["plain.onnx: a reference model whose tensors do not line up with"]);
    assert!(
        o.stderr
            .contains("no tensor '/conv_layers/conv_layers.0/Conv_output_0'"),
        "{}",
        o.stderr
    );

    // Nothing removed relative to the reference.
    let same = dir.path().join("same.onnx");
    std::fs::copy(shared("models/mnist_cnn.onnx"), &same).unwrap();
    let o = run_on(&same, &["--reference", s(&dir.path().join("mnist_cnn.onnx"))]);
    o.fails_in_one_line(&["same.onnx: nothing to calibrate"]);

    // No reference: the recorded source is not beside the model, or is a different file.
    let away = tempfile::tempdir().unwrap();
    let moved = away.path().join("mnist21.onnx");
    std::fs::copy(&model, &moved).unwrap();
    let o = run_on(&moved, &[]);
    o.fails_in_one_line(&["records its source as 'mnist_cnn.onnx'", "--reference"]);
    std::fs::copy(&five, away.path().join("mnist_cnn.onnx")).unwrap();
    let o = run_on(&moved, &[]);
    o.fails_in_one_line(&["not the recorded"]);
    let bare = away.path().join("bare.onnx");
    std::fs::copy(&same, &bare).unwrap();
    let o = run_on(&bare, &["--method", "affine"]);
    o.fails_in_one_line(&["bare.onnx: --method affine matches the source model's tensors"]);

    // AdaBN on a model without BatchNormalization.
    let o = run(&["--method", "adabn"]);
    o.fails_in_one_line(&["mnist21.onnx: no BatchNormalization to re-estimate"]);

    // Output equal to the input.
    let o = ratio(&[
        "calibrate",
        s(&model),
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "-o",
        s(&model),
    ]);
    o.fails_in_one_line(&["refusing to overwrite"]);

    assert!(!out.exists(), "a failed calibration wrote its output");
}
