//! `ratio bench` end to end: the built binary on the real mnist_cnn checkpoint and on small generated models.

use std::path::{Path, PathBuf};

use converters::ir::build::{self, GraphBuilder};
use converters::proto::tensor_proto::DataType;
use ratio_testkit::{Run, shared};
use reports::schema::Record;
use reports::schema::bench::BenchBody;
use serde_json::Value;

fn mnist() -> PathBuf {
    shared("models/mnist_cnn.onnx")
}

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!().args(args).run()
}

/// A GPU is declared (`RATIO_GPU_TESTS=1`, as scripts/gpu-check.sh sets) or its device node exists.
fn gpu_expected() -> bool {
    std::env::var("RATIO_GPU_TESTS").as_deref() == Ok("1") || toolkit::runtime::nvidia_device_present()
}

/// The `ratio/bench/v1` record on stdout, checked against the typed body; returns it and its body as JSON.
fn record_of(out: &Run) -> (Record, Value) {
    out.success();
    let rec = Record::from_json(&out.stdout).expect("stdout is the bench record");
    rec.body_as::<BenchBody>().expect("the body is a bench body");
    let body = rec.body.clone();
    (rec, body)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ratio-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// x [batch?, 4] → Relu → y, saved to `dir/<name>.onnx`; `batch` None makes the batch symbolic.
fn relu_model(dir: &Path, name: &str, batch: Option<i64>) -> PathBuf {
    let mut b = GraphBuilder::new(name);
    let x = b.input("x", DataType::Float, &[batch, Some(4)]);
    let y = b.op("Relu", "y", &[&x], vec![]);
    b.output(&y, DataType::Float, &[batch, Some(4)]);
    let path = dir.join(format!("{name}.onnx"));
    converters::Model::new(build::model(b.finish(), "ratio-tests"))
        .save(&path, false)
        .unwrap();
    path
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn sweep_report_has_every_setting_with_consistent_statistics() {
    let m = mnist();
    let out = ratio(&[
        "bench",
        p(&m),
        "--warmup",
        "2",
        "--iters",
        "15",
        "--batch",
        "1,4",
        "--threads",
        "1,2",
        "--seed",
        "3",
        "--json",
        "-",
    ]);
    let (rec, r) = record_of(&out);
    assert_eq!(rec.schema, "ratio/bench/v1");
    assert_eq!(rec.provenance.ort_version.as_deref(), Some("1.31.1"));
    assert_eq!(
        rec.provenance.execution_provider.as_deref(),
        Some("CPUExecutionProvider")
    );
    assert!(rec.provenance.machine.cores >= 1);
    assert_eq!(rec.provenance.extra["seed"], 3);
    let mnist_sha = "0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150";
    assert_eq!(r["models"][0]["sha256"], mnist_sha);
    assert_eq!(rec.inputs[0].sha256, mnist_sha);
    assert_eq!(r["settings"]["seed"], 3);
    let runs = r["runs"].as_array().unwrap();
    let settings: Vec<(u64, u64)> = runs
        .iter()
        .map(|g| (g["threads"].as_u64().unwrap(), g["batch"].as_u64().unwrap()))
        .collect();
    assert_eq!(settings, vec![(1, 1), (1, 4), (2, 1), (2, 4)]);
    for g in runs {
        assert_eq!(g["iterations"], 15);
        let f = g["overhead_fraction"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&f), "overhead_fraction {f}");
        assert!(g["run_s"].as_f64().unwrap() <= g["loop_s"].as_f64().unwrap());
        let res = &g["results"][0];
        let l = &res["latency_ms"];
        let q = |k: &str| l[k].as_f64().unwrap();
        assert_eq!(l["n"], 15);
        assert!(q("min") <= q("p50") && q("p50") <= q("p90") && q("p90") <= q("p99") && q("p99") <= q("max"));
        assert!(q("min") > 0.0 && q("std") >= 0.0);
        let samples: Vec<f64> = res["samples_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(samples.len(), 15);
        let mean = samples.iter().sum::<f64>() / 15.0;
        assert!((mean - q("mean")).abs() < 1e-9 * mean.max(1.0));
        let batch = g["batch"].as_f64().unwrap();
        let thr = res["throughput_per_s"].as_f64().unwrap();
        assert!((thr - batch * 1000.0 / q("mean")).abs() < 1e-6 * thr);
        assert!(g["comparisons"].as_array().unwrap().is_empty());
    }
    // The table went to stderr since stdout holds the JSON.
    let table = &out.stderr;
    assert!(
        table.contains("mnist_cnn.onnx") && table.contains("overhead outside Session::run"),
        "{table}"
    );
}

#[test]
fn several_models_are_interleaved_and_compared_to_the_first() {
    let dir = scratch("pair");
    let tiny = relu_model(&dir, "tiny", None);
    let out = ratio(&[
        "bench",
        p(&mnist()),
        p(&tiny),
        "--warmup",
        "1",
        "--iters",
        "30",
        "--batch",
        "2",
        "--json",
        "-",
    ]);
    let r = record_of(&out).1;
    let g = &r["runs"][0];
    assert_eq!(g["results"].as_array().unwrap().len(), 2);
    assert_eq!(g["results"][1]["latency_ms"]["n"], 30);
    let c = &g["comparisons"][0];
    assert!(c["model"].as_str().unwrap().ends_with("tiny.onnx"));
    assert!(c["baseline"].as_str().unwrap().ends_with("mnist_cnn.onnx"));
    let ratio = &c["ratio"];
    assert_eq!(ratio["n"], 30);
    let (lo, med, hi) = (
        ratio["ci_low"].as_f64().unwrap(),
        ratio["median"].as_f64().unwrap(),
        ratio["ci_high"].as_f64().unwrap(),
    );
    assert!(lo <= med && med <= hi && lo > 0.0, "{ratio}");
    // The paired median equals the median of per-iteration ratios recomputed from the samples.
    let s = |i: usize| -> Vec<f64> {
        g["results"][i]["samples_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let mut ratios: Vec<f64> = s(1).iter().zip(s(0)).map(|(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    assert!((med - (ratios[14] + ratios[15]) / 2.0).abs() < 1e-12);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_out_is_written_and_the_table_goes_to_stdout() {
    let dir = scratch("out");
    let file = dir.join("bench.json");
    let out = ratio(&[
        "bench",
        p(&mnist()),
        "--iters",
        "3",
        "--warmup",
        "0",
        "--json",
        p(&file),
    ]);
    out.success();
    let table = &out.stdout;
    assert!(table.contains("ONNX Runtime 1.31.1"), "{table}");
    let rec = Record::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let r: BenchBody = rec.body_as().unwrap();
    assert_eq!(r.runs[0].iterations, 3);
    // Only the report is left: the atomic write's temp file was renamed.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duration_mode_runs_at_least_once() {
    let out = ratio(&[
        "bench",
        p(&mnist()),
        "--warmup",
        "1",
        "--duration",
        "0.05",
        "--json",
        "-",
    ]);
    let r = record_of(&out).1;
    assert!(r["runs"][0]["iterations"].as_u64().unwrap() >= 1);
    assert_eq!(r["settings"]["duration_s"], 0.05);
    assert!(r["settings"]["iters"].is_null());
}

#[test]
fn profile_summarizes_ops_and_nodes() {
    let out = ratio(&[
        "bench",
        p(&mnist()),
        "--warmup",
        "2",
        "--iters",
        "3",
        "--profile",
        "--profile-iters",
        "4",
        "--profile-top",
        "2",
        "--json",
        "-",
    ]);
    let r = record_of(&out).1;
    let prof = &r["runs"][0]["profiles"][0]["summary"];
    assert_eq!(prof["runs"], 4);
    assert_eq!(prof["top_nodes"].as_array().unwrap().len(), 2);
    let ops = prof["by_op"].as_array().unwrap();
    // mnist_cnn's three convolutions run once per run, whatever ORT fuses around them.
    let conv = ops.iter().find(|o| o["op_type"] == "Conv").unwrap();
    assert_eq!(conv["calls"], 12);
    let total: f64 = ops.iter().map(|o| o["fraction"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9);
    // On the CPU every kernel belongs to the CPU provider.
    assert_eq!(prof["by_provider"][0]["provider"], "CPUExecutionProvider");
    assert_eq!(prof["by_provider"][0]["fraction"], 1.0);
}

#[test]
fn static_batch_mismatch_is_a_clear_error() {
    let dir = scratch("static");
    let fixed = relu_model(&dir, "fixed", Some(1));
    let ok = ratio(&["bench", p(&fixed), "--iters", "2", "--batch", "1", "--json", "-"]);
    assert_eq!(record_of(&ok).1["runs"][0]["batch"], 1);
    let out = ratio(&["bench", p(&fixed), "--iters", "2", "--batch", "8"]);
    let err = &out.stderr;
    assert_eq!(out.code, Some(2), "{err}");
    assert!(
        err.contains("fixed.onnx: input 'x' [1,4] has a static batch dimension of 1; --batch 8"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_and_missing_files_exit_2_with_the_reason() {
    let out = ratio(&["bench", "/nonexistent/m.onnx", "--iters", "1"]);
    out.fails_with(&["/nonexistent/m.onnx: cannot load the model"]);

    let out = ratio(&["bench", p(&mnist()), "--batch", "0"]);
    assert!(out.stderr.contains("batch sizes must be at least 1"));
    let out = ratio(&[
        "bench",
        p(&mnist()),
        "--device",
        "cuda:0",
        "--iters",
        "1",
        "--json",
        "-",
    ]);
    let err = &out.stderr;
    if cfg!(feature = "cuda") && gpu_expected() {
        assert_eq!(
            record_of(&out).0.provenance.execution_provider.as_deref(),
            Some("CUDAExecutionProvider")
        );
    } else {
        assert_eq!(out.code, Some(2), "{err}");
        if !cfg!(feature = "cuda") {
            assert!(err.contains("built without the `cuda` feature"), "{err}");
        }
    }
    let out = ratio(&["bench", p(&mnist()), "--device", "tpu"]);
    assert!(out.stderr.contains("unknown device 'tpu'"));
}

#[test]
fn missing_library_is_a_clear_error_not_a_panic() {
    let out = ratio_testkit::ratio!()
        .args(["bench", "--iters", "1"])
        .arg(mnist())
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .run();
    out.fails_with(&["/nonexistent/libonnxruntime.so.1.31.1", "run scripts/setup-ort.sh"]);
}
