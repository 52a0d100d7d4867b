//! `ratio eval` end to end through the binary: JSON/CSV output, several models, and every kind of bad input the
//! issue lists, each giving a clear error and exit status 2 (never a panic).

use ratio_testkit::{Run, shared};
use reports::schema::Record;
use reports::schema::eval::EvalRecord;
use toolkit::data::idx::encode_idx;
use toolkit::data::npy::{NpyData, encode_npy};

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!()
        .args(args)
        .args(["--threads", "1", "--no-progress"])
        .run()
}

/// The typed body of a `--json` record.
fn body(o: &Run) -> EvalRecord {
    Record::from_json(&o.stdout).unwrap().body_as().unwrap()
}

fn mnist_model() -> String {
    shared("models/mnist_cnn.onnx").display().to_string()
}

fn mnist_data() -> String {
    shared("data/mnist").display().to_string()
}

/// `ratio eval` of the MNIST CNN twice (baseline and model) on the first `limit` test images, as JSON, plus `extra`.
fn eval_twice(limit: &str, extra: &[&str]) -> Run {
    let (m, d) = (mnist_model(), mnist_data());
    let args = [
        "eval", &m, &m, "--data", &d, "--preset", "mnist", "--limit", limit, "--json", "-",
    ];
    ratio(&[&args[..], extra].concat())
}

#[test]
fn json_record_for_two_models_on_the_same_samples() {
    let o = eval_twice("300", &[]);
    o.success();
    let env = Record::from_json(&o.stdout).unwrap();
    assert_eq!((env.schema.as_str(), env.kind.as_str()), ("ratio/eval/v1", "eval"));
    // Inputs pinned by content: the model (twice) and the IDX files.
    assert_eq!(env.inputs.len(), 3);
    assert_eq!(
        env.inputs[0].sha256,
        "0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150"
    );
    assert_eq!(env.provenance.ort_version.as_deref(), Some("1.31.1"));
    assert!(env.provenance.extra.contains_key("preset_fingerprint"));
    let r: EvalRecord = env.body_as().unwrap();
    assert_eq!((r.data.evaluated, r.data.count, r.data.limit), (300, 10_000, Some(300)));
    assert_eq!(r.models.len(), 2);
    assert_eq!(r.models[0].top1, r.models[1].top1);
    let c = &r.comparisons[0];
    // Same model twice: full agreement, no discordant pairs, a zero-width interval.
    assert_eq!(
        (c.agreement, c.baseline_only_correct, c.model_only_correct),
        (1.0, 0, 0)
    );
    assert_eq!(
        (c.mcnemar_p, c.top1_diff, c.ci_low, c.ci_high),
        (1.0, 0.0, Some(0.0), Some(0.0))
    );
    assert_eq!(r.preset.fingerprint.len(), 64);
    assert_eq!(
        env.provenance.execution_provider.as_deref(),
        Some("CPUExecutionProvider")
    );
    assert_eq!(env.provenance.device.as_deref(), Some("cpu"));
    assert_eq!(r.models[0].confusion.iter().flatten().sum::<u64>(), 300);
    // Without --per-sample the record holds no per-sample data.
    assert!(r.samples.is_none() && r.models[0].predictions.is_none());
}

#[test]
fn per_sample_records_pair_runs_sample_by_sample() {
    let o = eval_twice("300", &["--per-sample"]);
    o.success();
    let env = Record::from_json(&o.stdout).unwrap();
    assert_eq!(env.body["samples"]["indices"], "0-299", "indices are stored as ranges");
    let r: EvalRecord = env.body_as().unwrap();
    let samples = r.samples.as_ref().unwrap();
    assert_eq!(samples.indices.0, (0..300).collect::<Vec<_>>());
    assert_eq!(samples.labels.0.len(), 300);
    // The labels are the data's: their histogram is the confusion matrix's row sums.
    for (class, row) in r.models[0].confusion.iter().enumerate() {
        let n = samples.labels.0.iter().filter(|&&l| l as usize == class).count() as u64;
        assert_eq!(n, row.iter().sum::<u64>(), "class {class}");
    }
    let correct = r.models[0].correct(samples).unwrap();
    let right = correct.iter().filter(|&&c| c).count() as u64;
    assert_eq!(right, r.models[0].per_class.iter().map(|c| c.correct).sum::<u64>());
    assert_eq!(r.models[0].predictions, r.models[1].predictions);
}

#[test]
fn csv_and_table_outputs() {
    let m = mnist_model();
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--limit",
        "100",
        "--csv",
    ]);
    o.success();
    let text = o.stdout.clone();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("model,model_sha256,data_sha256,preset_fingerprint,class"));
    // Header, one "all" row, ten classes.
    assert_eq!(lines.len(), 12);
    assert!(lines[1].contains(",all,all,100,"), "{}", lines[1]);
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--limit",
        "100",
        "--confusion",
    ]);
    let text = o.stdout.clone();
    assert!(
        text.contains("top-1") && text.contains("fingerprint") && text.contains("confusion"),
        "{text}"
    );
}

#[test]
fn zero_bootstrap_resamples_give_no_interval() {
    let o = eval_twice("20", &["--bootstrap", "0"]);
    o.success();
    let r: EvalRecord = body(&o);
    assert_eq!(
        (r.comparisons[0].ci_low, r.comparisons[0].bootstrap_resamples),
        (None, 0)
    );
}

#[test]
fn min_top1_sets_exit_status_one() {
    let m = mnist_model();
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--limit",
        "50",
        "--min-top1",
        "1.01",
    ]);
    assert_eq!(o.code, Some(1), "{}", o.text());
}

#[test]
fn nonexistent_data_and_model() {
    let m = mnist_model();
    let o = ratio(&["eval", &m, "--data", "/no/such/set", "--preset", "mnist"]);
    o.fails_with(&["/no/such/set", "does not exist"]);
    let o = ratio(&["eval", "/no/model.onnx", "--data", &mnist_data(), "--preset", "mnist"]);
    o.fails_with(&["/no/model.onnx"]);
    let o = ratio(&["eval", &m, "--data", "fashion-mnist", "--preset", "fashion-mnist"]);
    o.fails_with(&["ratio data fetch fashion-mnist"]);
}

#[test]
fn preset_that_does_not_fit_the_model() {
    let m = mnist_model();
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        &mnist_data(),
        "--preset",
        "imagenet-tf",
        "--limit",
        "10",
    ]);
    o.fails_with(&["imagenet-tf", "does not fit", "height 28", "gives 224"]);
    let eff = shared("models/efficientnet_lite0.onnx").display().to_string();
    let o = ratio(&[
        "eval",
        &eff,
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--limit",
        "10",
    ]);
    o.fails_with(&["channels 3", "gives 1"]);
}

#[test]
fn wrong_input_dtype() {
    let m = mnist_model();
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--dtype",
        "f16",
        "--limit",
        "10",
    ]);
    o.fails_with(&["input 'input' is f32", "preset produces f16"]);
}

#[test]
fn labels_outside_the_model_classes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.npy"),
        encode_npy(&[3, 28, 28], &NpyData::U8(vec![0; 3 * 784])),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("y.npy"),
        encode_npy(&[3], &NpyData::I64(vec![1, 12, 3])),
    )
    .unwrap();
    let o = ratio(&[
        "eval",
        &mnist_model(),
        "--data",
        dir.path().to_str().unwrap(),
        "--preset",
        "mnist",
    ]);
    o.fails_with(&["sample 1 has label 12", "outside the 10 classes"]);
}

/// The first `n` MNIST test images as 28×28 PNGs in one folder per class, with one corrupt file in class 3.
fn mnist_png_folder(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ds = toolkit::data::open(&mnist_data(), &Default::default()).unwrap();
    for c in 0..10 {
        std::fs::create_dir(dir.path().join(c.to_string())).unwrap();
    }
    for i in 0..n {
        let s = ds.sample(i).unwrap();
        let toolkit::data::Pixels::U8(px) = s.image.pixels else {
            panic!()
        };
        let img = image::GrayImage::from_raw(28, 28, px).unwrap();
        img.save(dir.path().join(s.label.to_string()).join(format!("{i:05}.png")))
            .unwrap();
    }
    std::fs::write(dir.path().join("3").join("99999.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    dir
}

#[test]
fn image_folder_matches_idx_and_corrupt_images_skip_or_fail() {
    let dir = mnist_png_folder(200);
    let d = dir.path().to_str().unwrap();
    let m = mnist_model();
    let o = ratio(&["eval", &m, "--data", d, "--preset", "mnist", "--grayscale"]);
    o.fails_with(&["99999.png", "corrupt image"]);
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        d,
        "--preset",
        "mnist",
        "--grayscale",
        "--on-corrupt",
        "skip",
        "--json",
        "-",
    ]);
    o.success();
    let folder: EvalRecord = body(&o);
    assert_eq!((folder.data.evaluated, folder.data.skipped_corrupt), (200, 1));
    assert!(folder.data.skipped_examples[0].contains("99999.png"));
    // Gray PNGs decode to RGB and back to the same gray values, so the folder scores exactly as the IDX images.
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        &mnist_data(),
        "--preset",
        "mnist",
        "--limit",
        "200",
        "--json",
        "-",
    ]);
    let idx: EvalRecord = body(&o);
    let correct = |r: &EvalRecord| r.models[0].per_class.iter().map(|c| c.correct).sum::<u64>();
    assert_eq!(correct(&folder), correct(&idx));
    assert_eq!(folder.models[0].confusion, idx.models[0].confusion);
    // Without --grayscale the RGB folder does not fit the 1-channel model.
    let o = ratio(&["eval", &m, "--data", d, "--preset", "mnist", "--on-corrupt", "skip"]);
    o.fails_with(&["channels 1", "gives 3"]);
    // An empty class folder is refused by name.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let o = ratio(&["eval", &m, "--data", d, "--preset", "mnist", "--grayscale"]);
    o.fails_with(&["empty", "holds no images"]);
}

#[test]
fn leading_corrupt_image_is_skipped_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("0")).unwrap();
    std::fs::write(dir.path().join("0/0.png"), b"not a png").unwrap();
    image::GrayImage::new(28, 28).save(dir.path().join("0/1.png")).unwrap();
    let d = dir.path().to_str().unwrap();
    let m = mnist_model();
    let o = ratio(&[
        "eval",
        &m,
        "--data",
        d,
        "--preset",
        "mnist",
        "--grayscale",
        "--on-corrupt",
        "skip",
        "--per-sample",
        "--json",
        "-",
    ]);
    let r = body(&o);
    assert_eq!((r.data.evaluated, r.data.skipped_corrupt), (1, 1));
    // The skipped image is absent from the per-sample indices, so runs pair on the samples actually scored.
    assert_eq!(r.samples.as_ref().unwrap().indices.0, vec![1]);
    let o = ratio(&["eval", &m, "--data", d, "--preset", "mnist", "--grayscale"]);
    o.fails_with(&["0.png", "corrupt image"]);
}

#[test]
fn ragged_images_without_resize() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    image::GrayImage::new(28, 28).save(dir.path().join("a/1.png")).unwrap();
    image::GrayImage::new(30, 28).save(dir.path().join("a/2.png")).unwrap();
    let o = ratio(&[
        "eval",
        &mnist_model(),
        "--data",
        dir.path().to_str().unwrap(),
        "--preset",
        "mnist",
        "--grayscale",
    ]);
    o.fails_with(&["image 1 is [28, 30, 1]", "add a resize/crop"]);
}

#[test]
fn corrupt_idx_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut imgs = encode_idx(&[2, 28, 28], &[0; 2 * 784]);
    imgs.truncate(100);
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), imgs).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), encode_idx(&[2], &[0, 1])).unwrap();
    let o = ratio(&[
        "eval",
        &mnist_model(),
        "--data",
        dir.path().to_str().unwrap(),
        "--preset",
        "mnist",
    ]);
    o.fails_with(&["t10k-images-idx3-ubyte", "not an IDX file"]);
}
