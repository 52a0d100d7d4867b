//! The runtime layer on the real checkpoints in ../shared/models: loading, metadata, runs, feed checks, errors,
//! exposed intermediate outputs, prepared feeds and in-memory models.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, IxDyn};
use rand::{Rng, SeedableRng};
use ratio_testkit::shared;
use toolkit::runtime::{Device, ElemType, Feed, OptLevel, Runner, RuntimeConfig, RuntimeError, ensure_ort};

fn mnist() -> PathBuf {
    shared("models/mnist_cnn.onnx")
}

fn cfg() -> RuntimeConfig {
    // One thread: several engineers share two cores, and results must not depend on the thread count.
    RuntimeConfig::cpu().with_threads(1)
}

fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random::<f32>())
}

#[test]
fn ort_version_is_the_pinned_release() {
    assert_eq!(ensure_ort().unwrap(), "1.31.1");
}

#[test]
fn mnist_metadata_and_batch_run() {
    let mut r = Runner::from_path(&mnist(), &cfg()).unwrap();
    assert_eq!(r.inputs().len(), 1);
    let i = &r.inputs()[0];
    assert_eq!((i.name.as_str(), &i.elem), ("input", &ElemType::F32));
    assert_eq!(i.dims, vec![None, Some(1), Some(28), Some(28)]);
    assert_eq!(r.outputs()[0].name, "logits");
    assert_eq!(
        r.sha256(),
        Some("0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150")
    );
    let x = random(&[3, 1, 28, 28], 7);
    let out = r.run(&[("input", Feed::F32(x.view()))]).unwrap();
    let logits = out.get("logits").unwrap();
    assert_eq!(logits.shape(), &[3, 10]);
    assert!(logits.iter().all(|v| v.is_finite()));
    // Rows are independent: sample 1 alone gives the same logits as inside the batch.
    let x1 = x.index_axis(Axis(0), 1).insert_axis(Axis(0)).to_owned();
    let alone = r.run(&[("input", Feed::F32(x1.view()))]).unwrap();
    let a = alone.get("logits").unwrap();
    for (p, q) in a.iter().zip(logits.index_axis(Axis(0), 1).iter()) {
        // Batched and single-sample GEMMs may sum in a different order; 1e-4 covers f32 reordering on logits ~10.
        assert!((p - q).abs() < 1e-4, "{p} vs {q}");
    }
}

#[test]
fn strided_feed_is_copied_not_rejected() {
    let mut r = Runner::from_path(&mnist(), &cfg()).unwrap();
    let x = random(&[1, 1, 28, 28], 3);
    let strided = x.view().reversed_axes(); // [28,28,1,1], Fortran order
    let back = strided.reversed_axes(); // the original shape through a reversed-stride view
    let mut t = x.clone();
    t.swap_axes(2, 3);
    assert!(!t.is_standard_layout());
    let a = r.run(&[("input", Feed::F32(t.view()))]).unwrap();
    let contiguous = t.as_standard_layout().into_owned();
    let b = r.run(&[("input", Feed::F32(contiguous.view()))]).unwrap();
    assert_eq!(a.get("logits").unwrap(), b.get("logits").unwrap());
    let c = r.run(&[("input", Feed::F32(back))]).unwrap();
    let d = r.run(&[("input", Feed::F32(x.view()))]).unwrap();
    assert_eq!(c.get("logits").unwrap(), d.get("logits").unwrap());
}

#[test]
fn efficientnet_runs_with_a_spread_of_logits() {
    let path = shared("models/efficientnet_lite0.onnx");
    let mut r = Runner::from_path(&path, &RuntimeConfig::default()).unwrap();
    assert_eq!(r.inputs()[0].dims[1..], [Some(3), Some(224), Some(224)]);
    let x = random(&[1, 3, 224, 224], 1).mapv(|v| v * 2.0 - 1.0);
    let out = r.run(&[("input", Feed::F32(x.view()))]).unwrap();
    let logits = out.get("logits").unwrap();
    assert_eq!(logits.shape(), &[1, 1000]);
    assert!(logits.iter().all(|v| v.is_finite()));
    // A broken input binding (zeros) still gives finite logits, but hardly a spread of several units.
    let (lo, hi) = logits
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(hi - lo > 1.0, "logit range {lo}..{hi}");
}

#[test]
fn bad_feeds_are_reported_before_ort_runs() {
    let mut r = Runner::from_path(&mnist(), &cfg()).unwrap();
    let x = random(&[1, 1, 28, 28], 0);
    let e = r.run(&[("image", Feed::F32(x.view()))]).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::BadFeed { name, .. } if name == "input"),
        "{e}"
    );
    assert!(e.to_string().contains("given: image"), "{e}");

    let xi = ArrayD::<i64>::zeros(IxDyn(&[1, 1, 28, 28]));
    let e = r.run(&[("input", Feed::I64(xi.view()))]).unwrap_err();
    let RuntimeError::BadFeed { expected, got, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(expected, "f32 [?,1,28,28]");
    assert_eq!(got, "i64 [1, 1, 28, 28]");

    let x = random(&[2, 1, 32, 32], 0);
    let e = r.run(&[("input", Feed::F32(x.view()))]).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected f32 [?,1,28,28], got f32 [2, 1, 32, 32]"),
        "{e}"
    );

    let x = random(&[1, 1, 28, 28], 0);
    let e = r.run_select(&[("input", Feed::F32(x.view()))], &["probs"]).unwrap_err();
    assert!(
        e.to_string().contains("no output named 'probs' (outputs: logits)"),
        "{e}"
    );
}

#[test]
fn missing_and_corrupt_model_files_name_the_file() {
    let e = Runner::from_path(Path::new("/nonexistent/model.onnx"), &cfg()).unwrap_err();
    assert!(matches!(e, RuntimeError::Load { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/model.onnx: cannot load the model"),
        "{e}"
    );

    let dir = std::env::temp_dir().join(format!("ratio-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"definitely not protobuf").unwrap();
    let e = Runner::from_path(&junk, &cfg()).unwrap_err();
    assert!(e.to_string().contains("junk.onnx: cannot load the model"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A GPU is declared (`RATIO_GPU_TESTS=1`, as scripts/gpu-check.sh sets) or its device node exists. Deciding
/// this apart from the code under test keeps a broken CUDA path from passing as "no GPU here".
fn gpu_expected() -> bool {
    std::env::var("RATIO_GPU_TESTS").as_deref() == Ok("1") || toolkit::runtime::nvidia_device_present()
}

#[test]
fn cuda_runs_on_a_gpu_and_is_a_loud_error_everywhere_else() {
    let c = RuntimeConfig {
        device: "cuda:0".parse::<Device>().unwrap(),
        ..cfg()
    };
    let r = Runner::from_path(&mnist(), &c);
    if !cfg!(feature = "cuda") {
        let e = r.unwrap_err();
        assert!(matches!(e, RuntimeError::Cuda { .. }));
        assert!(e.to_string().contains("built without the `cuda` feature"), "{e}");
    } else if gpu_expected() {
        // The same batch on the CPU and on the GPU: cuDNN's reduction orders differ from MLAS by float rounding.
        let x = random(&[4, 1, 28, 28], 5);
        let mut gpu = r.unwrap();
        let mut cpu = Runner::from_path(&mnist(), &cfg()).unwrap();
        let a = cpu.run(&[("input", Feed::F32(x.view()))]).unwrap();
        let b = gpu.run(&[("input", Feed::F32(x.view()))]).unwrap();
        let (a, b) = (a.get("logits").unwrap(), b.get("logits").unwrap());
        let worst = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "CPU and CUDA logits differ by {worst}");
    } else {
        // With the feature on a machine without a GPU (or with the CPU-only library), registration fails loudly:
        // error_on_failure, never a quiet CPU run.
        let e = r.unwrap_err();
        assert!(
            matches!(e, RuntimeError::Cuda { .. } | RuntimeError::Load { .. }),
            "{e}"
        );
    }
}

#[test]
fn exposed_relu_output_matches_its_definition() {
    let mut model = converters::Model::load(mnist()).unwrap();
    let g = model.graph();
    let conv = g.node.iter().find(|n| n.op_type.as_deref() == Some("Conv")).unwrap();
    let relu = g.node.iter().find(|n| n.op_type.as_deref() == Some("Relu")).unwrap();
    let (pre, post) = (conv.output[0].clone(), relu.output[0].clone());
    assert_eq!(relu.input[0], pre, "mnist_cnn: the first Relu reads the first Conv");
    converters::ir::expose::expose_outputs(&mut model, &[pre.clone(), post.clone()]).unwrap();
    let e = converters::ir::expose::expose_outputs(&mut model, &["no_such_value".into()]).unwrap_err();
    assert!(e.to_string().contains("'no_such_value'"), "{e}");

    let mut r = Runner::from_model(&model, &cfg()).unwrap();
    assert_eq!(r.outputs().len(), 3);
    let x = random(&[2, 1, 28, 28], 11);
    let mut out = r.run(&[("input", Feed::F32(x.view()))]).unwrap();
    let pre_a = out.take(&pre).unwrap();
    let post_a = out.get(&post).unwrap();
    // First block: Conv 3×3 with 32 filters; the batch and channel count are fixed whatever the padding.
    assert_eq!(&post_a.shape()[..2], &[2, 32]);
    assert_eq!(pre_a.shape(), post_a.shape());
    assert!(post_a.iter().all(|&v| v >= 0.0));
    assert!(
        pre_a.iter().any(|&v| v < 0.0),
        "random input should drive some pre-activations negative"
    );
    assert!(pre_a.iter().zip(post_a.iter()).all(|(&a, &b)| b == a.max(0.0)));

    // The extra outputs do not change the logits.
    let mut plain = Runner::from_path(&mnist(), &cfg()).unwrap();
    let base = plain.run(&[("input", Feed::F32(x.view()))]).unwrap();
    assert_eq!(base.get("logits").unwrap(), out.get("logits").unwrap());

    // run_select fetches only what is asked.
    let sel = r.run_select(&[("input", Feed::F32(x.view()))], &[&post]).unwrap();
    assert_eq!(sel.names().collect::<Vec<_>>(), vec![post.as_str()]);
    assert!(sel.get("logits").is_err());
}

#[test]
fn prepared_feeds_give_the_same_outputs_and_time_the_run() {
    let mut r = Runner::from_path(&mnist(), &cfg()).unwrap();
    let x = random(&[4, 1, 28, 28], 5);
    let feeds = [("input", Feed::F32(x.view()))];
    let p = r.prepare(&feeds).unwrap();
    let a = r.run_prepared(&p, &[]).unwrap();
    let b = r.run(&feeds).unwrap();
    assert_eq!(a.get("logits").unwrap(), b.get("logits").unwrap());
    let t = r.time_prepared(&p).unwrap();
    assert!(t.as_nanos() > 0);
    let bad = random(&[4, 3, 28, 28], 5);
    assert!(r.prepare(&[("input", Feed::F32(bad.view()))]).is_err());
}

#[test]
fn optimisation_levels_agree() {
    let x = random(&[2, 1, 28, 28], 9);
    let run = |lvl| {
        let c = RuntimeConfig {
            opt_level: lvl,
            ..cfg()
        };
        let mut r = Runner::from_path(&mnist(), &c).unwrap();
        r.run(&[("input", Feed::F32(x.view()))])
            .unwrap()
            .take("logits")
            .unwrap()
    };
    let (a, b) = (run(OptLevel::Disable), run(OptLevel::All));
    for (p, q) in a.iter().zip(b.iter()) {
        // Fusions (Conv+Relu, NCHWc layouts) reorder f32 sums; logits of order 10 agree to ~1e-5 relative.
        assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
    }
}

#[test]
fn profiler_trace_is_summarized_by_op_and_node() {
    let dir = std::env::temp_dir().join(format!("ratio-prof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = RuntimeConfig {
        profile: Some(dir.join("mnist")),
        ..cfg()
    };
    let mut r = Runner::from_path(&mnist(), &c).unwrap();
    let x = random(&[1, 1, 28, 28], 2);
    r.run(&[("input", Feed::F32(x.view()))]).unwrap();
    let trace = r.end_profiling().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.as_array().is_some_and(|a| a.iter().any(|e| e["cat"] == "Node")));
    let s = toolkit::runtime::summarize_profile(&trace, 3, 0).unwrap();
    assert_eq!(s.runs, 1);
    // mnist_cnn: 3 Conv, 3 MaxPool, 2 Gemm (or fused forms of them), each run once.
    assert!(
        s.by_op.iter().any(|o| o.op_type == "Conv" && o.calls == 3),
        "{:?}",
        s.by_op
    );
    assert_eq!(s.top_nodes.len(), 3);
    assert!((s.by_op.iter().map(|o| o.fraction).sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(s.kernel_total_us <= s.run_total_us);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// x f32 [N,3] → Cast f16 and Cast i64 outputs; h f16 [N,3] → Cast f32 output. Written with the shared IR builder.
fn cast_model() -> converters::Model {
    use converters::ir::build::{self, Attr, GraphBuilder};
    use converters::proto::tensor_proto::DataType;
    let mut b = GraphBuilder::new("casts");
    let x = b.input("x", DataType::Float, &[None, Some(3)]);
    let h = b.input("h", DataType::Float16, &[None, Some(3)]);
    let to_h = b.op("Cast", "to_h", &[&x], vec![("to", Attr::Int(DataType::Float16 as i64))]);
    let to_i = b.op("Cast", "to_i", &[&x], vec![("to", Attr::Int(DataType::Int64 as i64))]);
    let from_h = b.op("Cast", "from_h", &[&h], vec![("to", Attr::Int(DataType::Float as i64))]);
    b.output(&to_h, DataType::Float16, &[None, Some(3)]);
    b.output(&to_i, DataType::Int64, &[None, Some(3)]);
    b.output(&from_h, DataType::Float, &[None, Some(3)]);
    converters::Model::new(build::model(b.finish(), "ratio-tests"))
}

#[test]
fn f16_and_i64_tensors_cross_the_boundary() {
    let mut r = Runner::from_model(&cast_model(), &cfg()).unwrap();
    let elems: Vec<_> = r.inputs().iter().map(|s| s.elem.clone()).collect();
    assert_eq!(elems, vec![ElemType::F32, ElemType::F16]);
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.5f32, -1.25, 3.0, 7.75, 1e-3, -2.0]).unwrap();
    let h = x.mapv(half::f16::from_f32);
    let out = r
        .run(&[("x", Feed::F32(x.view())), ("h", Feed::F16(h.view()))])
        .unwrap();
    let names: Vec<&str> = out.names().collect();
    assert_eq!(names, vec!["to_h", "to_i", "from_h"]);
    assert_eq!(out.elem("to_h"), Some(&ElemType::F16));
    // 0.5, -1.25, 3, 7.75, -2 are exact in f16; 1e-3 rounds to the nearest f16 (0.0010004).
    let want_h = x.mapv(|v| half::f16::from_f32(v).to_f32());
    assert_eq!(out.get("to_h").unwrap(), &want_h);
    assert_eq!(out.get("from_h").unwrap(), &want_h);
    // Cast to int truncates toward zero; the exact i64 values are kept next to the f32 view.
    let ints = out.get_i64("to_i").unwrap();
    assert_eq!(ints.iter().copied().collect::<Vec<_>>(), vec![0, -1, 3, 7, 0, -2]);
    assert_eq!(
        out.get("to_i").unwrap().iter().copied().collect::<Vec<_>>(),
        vec![0.0, -1.0, 3.0, 7.0, 0.0, -2.0]
    );
    let e = out.get_i64("to_h").unwrap_err();
    assert!(
        e.to_string()
            .contains("output 'to_h' has element type f16, which cannot be read as i64"),
        "{e}"
    );
}

#[test]
fn external_data_models_load_from_file_and_from_memory() {
    let dir = std::env::temp_dir().join(format!("ratio-rt-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ext = dir.join("mnist_ext.onnx");
    converters::Model::load(mnist()).unwrap().save(&ext, true).unwrap();
    assert!(dir.join("mnist_ext.onnx.data").exists());
    let loaded = converters::Model::load(&ext).unwrap();
    assert!(loaded.has_external_data());

    let x = random(&[2, 1, 28, 28], 4);
    let logits = |r: &mut Runner| {
        r.run(&[("input", Feed::F32(x.view()))])
            .unwrap()
            .take("logits")
            .unwrap()
    };
    let want = logits(&mut Runner::from_path(&mnist(), &cfg()).unwrap());
    // ONNX Runtime resolves the side file itself when loading from the path …
    assert_eq!(logits(&mut Runner::from_path(&ext, &cfg()).unwrap()), want);
    // … and from memory the tensors are inlined first.
    assert_eq!(logits(&mut Runner::from_model(&loaded, &cfg()).unwrap()), want);

    // A missing side file is a load error naming the model.
    std::fs::remove_file(dir.join("mnist_ext.onnx.data")).unwrap();
    let e = Runner::from_path(&ext, &cfg()).unwrap_err();
    assert!(e.to_string().contains("mnist_ext.onnx: cannot load the model"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
