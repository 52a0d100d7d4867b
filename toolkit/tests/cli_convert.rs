//! `ratio convert`, `ratio-convert` and `ratio inspect` as a user runs them: every bad input gets one clear error
//! naming the file and a non-zero exit, and nothing is overwritten.

use std::path::{Path, PathBuf};

use prost::Message;
use ratio_testkit::{Run, shared};
use reports::schema::Record;
use reports::schema::convert::ConvertBody;
use reports::schema::inspect::InspectBody;

const MNIST_SHA: &str = "0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150";

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!().args(args).run()
}

fn copy_mnist(dir: &Path) -> PathBuf {
    let p = dir.join("mnist_cnn.onnx");
    std::fs::copy(shared("models/mnist_cnn.onnx"), &p).unwrap();
    p
}

#[test]
fn ratio_convert_binary_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_mnist(dir.path());
    let o = ratio_testkit::ratio!("ratio-convert")
        .arg(&m)
        .args(["--ratio", "2:1"])
        .run();
    o.success();
    let out = dir.path().join("mnist_cnn.2-1.onnx");
    assert!(out.is_file());
    let conv = converters::ir::Model::load(&out).unwrap();
    assert_eq!(conv.metadata("ratio.ratio"), Some("2:1"));
    assert_eq!(conv.metadata("ratio.removed"), Some("/conv_layers/conv_layers.4/Relu"));
    // The input is untouched.
    assert_eq!(
        std::fs::read(&m).unwrap(),
        std::fs::read(shared("models/mnist_cnn.onnx")).unwrap()
    );
    // Running again refuses to overwrite; --force overwrites.
    let o = ratio_testkit::ratio!("ratio-convert")
        .arg(&m)
        .args(["--ratio", "2:1"])
        .run();
    o.fails(&["mnist_cnn.2-1.onnx: output exists"]);
    let o = ratio_testkit::ratio!("ratio-convert")
        .arg(&m)
        .args(["--ratio", "2:1", "--force"])
        .run();
    o.success();
}

#[test]
fn bad_ratio_strings_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_mnist(dir.path());
    for (r, why) in [
        ("2:3", "greater than M"),
        ("0:1", "at least 1"),
        ("2:0", "at least 1"),
        ("abc", "N:M"),
        ("3:1:1", "N:M"),
    ] {
        let o = ratio(&["convert", m.to_str().unwrap(), "--ratio", r]);
        o.fails(&[why]);
        assert!(o.stderr.contains(r));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written");
}

#[test]
fn bad_model_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(shared("models/mnist_cnn.onnx")).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &original[..original.len() / 3]).unwrap();
    let text = dir.path().join("notes.onnx");
    std::fs::write(&text, "this is not a model\n").unwrap();
    for (p, needle) in [
        (truncated, "truncated.onnx: not a valid ONNX model"),
        (text, "notes.onnx: not a valid ONNX model"),
    ] {
        for cmd in ["convert", "inspect"] {
            let o = ratio(&[cmd, p.to_str().unwrap()]);
            o.fails(&[needle]);
            assert_eq!(o.code, Some(2));
        }
    }
    let o = ratio(&["convert", dir.path().join("missing.onnx").to_str().unwrap()]);
    o.fails(&["missing.onnx: No such file"]);
}

#[test]
fn unreadable_external_data_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = converters::ir::Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let p = dir.path().join("ext.onnx");
    m.save(&p, true).unwrap();
    std::fs::remove_file(dir.path().join("ext.onnx.data")).unwrap();
    let o = ratio(&["convert", p.to_str().unwrap()]);
    o.fails(&["ext.onnx: external data", "ext.onnx.data"]);
}

#[test]
fn external_data_models_convert_with_a_side_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = converters::ir::Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let p = dir.path().join("ext.onnx");
    m.save(&p, true).unwrap();
    let o = ratio(&["convert", p.to_str().unwrap(), "--ratio", "2:1"]);
    o.success();
    assert!(dir.path().join("ext.2-1.onnx.data").is_file());
    let back = converters::ir::Model::load(dir.path().join("ext.2-1.onnx")).unwrap();
    assert!(back.has_external_data());
}

#[test]
fn no_slots_unknown_ops_and_output_equal_to_input() {
    let dir = tempfile::tempdir().unwrap();
    let silu = dir.path().join("silu.onnx");
    std::fs::write(&silu, models::patterns::silu_net().encode_to_vec()).unwrap();
    ratio(&["convert", silu.to_str().unwrap()]).fails(&["silu.onnx: no activation slots"]);

    // An op ONNX Runtime does not know: the runtime check fails with the op named, nothing is written.
    let mut proto = models::patterns::relu_feeds_graph_output();
    let g = proto.graph.as_mut().unwrap();
    let conv = g
        .node
        .iter_mut()
        .find(|n| n.op_type.as_deref() == Some("Conv"))
        .unwrap();
    conv.op_type = Some("FancyConv".into());
    let unknown = dir.path().join("unknown.onnx");
    std::fs::write(&unknown, proto.encode_to_vec()).unwrap();
    let o = ratio(&[
        "convert",
        unknown.to_str().unwrap(),
        "--no-protect-stem",
        "--no-protect-head",
        "--scope",
        "global",
    ]);
    o.fails(&["unknown.onnx"]);
    assert!(o.stderr.contains("FancyConv"), "{}", o.stderr);
    assert!(!dir.path().join("unknown.2-1.onnx").exists());

    let m = copy_mnist(dir.path());
    let o = ratio(&["convert", m.to_str().unwrap(), "-o", m.to_str().unwrap(), "--force"]);
    o.fails(&["output path is the input model"]);
    assert_eq!(
        std::fs::read(&m).unwrap(),
        std::fs::read(shared("models/mnist_cnn.onnx")).unwrap()
    );
}

#[test]
fn plan_dry_run_then_apply_plan_reproduces_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_mnist(dir.path());
    let ms = m.to_str().unwrap();
    let o = ratio(&[
        "convert",
        ms,
        "--ratio",
        "3:1",
        "--scope",
        "global",
        "--no-protect-stem",
        "--plan",
    ]);
    o.success();
    let table = &o.stdout;
    assert!(table.contains("REMOVE") && table.contains("head (protected"), "{table}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "--plan writes nothing"
    );

    let o = ratio(&[
        "convert",
        ms,
        "--ratio",
        "3:1",
        "--scope",
        "global",
        "--no-protect-stem",
        "--plan",
        "--json",
        "-",
    ]);
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, &o.stdout).unwrap();
    let direct = dir.path().join("direct.onnx");
    let via_plan = dir.path().join("via_plan.onnx");
    let o = ratio(&[
        "convert",
        ms,
        "--ratio",
        "3:1",
        "--scope",
        "global",
        "--no-protect-stem",
        "-o",
        direct.to_str().unwrap(),
    ]);
    o.success();
    let o = ratio(&[
        "convert",
        ms,
        "--apply-plan",
        plan_file.to_str().unwrap(),
        "-o",
        via_plan.to_str().unwrap(),
    ]);
    o.success();
    assert_eq!(std::fs::read(direct).unwrap(), std::fs::read(via_plan).unwrap());

    std::fs::write(&plan_file, "{ not json").unwrap();
    let o = ratio(&["convert", ms, "--apply-plan", plan_file.to_str().unwrap()]);
    o.fails(&["plan.json: not a ratio plan"]);
}

#[test]
fn identity_ratio_writes_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_mnist(dir.path());
    let o = ratio(&["convert", m.to_str().unwrap(), "--ratio", "1:1"]);
    o.success();
    assert_eq!(
        std::fs::read(dir.path().join("mnist_cnn.1-1.onnx")).unwrap(),
        std::fs::read(&m).unwrap()
    );
}

#[test]
fn inspect_json_reports_slots_ratios_and_costs() {
    let o = ratio(&[
        "inspect",
        shared("models/mnist_cnn.onnx").to_str().unwrap(),
        "--json",
        "-",
    ]);
    o.success();
    let rec = Record::from_json(&o.stdout).unwrap();
    assert_eq!(rec.schema, "ratio/inspect/v1");
    let v: InspectBody = rec.body_as().unwrap();
    assert_eq!(v.slots.len(), 4);
    assert_eq!(v.op_count("Conv"), 3);
    assert_eq!((v.slots[0].kind.as_str(), v.slots[0].role.as_str()), ("relu", "stem"));
    // 320 + 18496 + 73856 conv params + 295168 + 2570 fc params.
    assert_eq!(v.params_total, 390410);
    // conv1: 28·28·32 outputs × 9 MACs each.
    assert_eq!(v.layers[0].macs, 28 * 28 * 32 * 9);
    assert_eq!(rec.inputs[0].sha256, MNIST_SHA);
}

#[test]
fn convert_json_is_a_typed_record_pinning_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_mnist(dir.path());
    let out = dir.path().join("two.onnx");
    let o = ratio(&[
        "convert",
        m.to_str().unwrap(),
        "--ratio",
        "2:1",
        "-o",
        out.to_str().unwrap(),
        "--json",
        "-",
    ]);
    o.success();
    let rec = Record::from_json(&o.stdout).unwrap();
    assert_eq!(rec.schema, "ratio/convert/v1");
    let b: ConvertBody = rec.body_as().unwrap();
    // The MNIST CNN has 4 ReLUs; 2:1 with stem and head protected removes exactly one.
    assert_eq!((b.slots, b.changed.len(), b.ratio.as_str()), (4, 1, "2:1"));
    assert_eq!(b.scopes.iter().map(|s| s.changed).sum::<usize>(), 1);
    let check = b.runtime_check.expect("the ONNX Runtime check ran");
    assert!(check.qualifying_samples <= check.batch);
    // The record pins the input and the written output by content, and names the runtime that checked it.
    assert_eq!(rec.inputs[0].sha256, MNIST_SHA);
    let written = converters::ir::model::sha256_file(&out).unwrap();
    assert_eq!(
        (rec.outputs[0].sha256.as_str(), b.output_sha256.as_str()),
        (written.as_str(), written.as_str())
    );
    assert_eq!(rec.provenance.ort_version.as_deref(), Some("1.31.1"));
}

#[test]
fn by_negative_mass_scores_slots_from_data() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_mnist(dir.path());
    let data = shared("data/mnist");
    let args = [
        "convert",
        m.to_str().unwrap(),
        "--ratio",
        "4:1",
        "--scope",
        "global",
        "--no-protect-stem",
        "--no-protect-head",
        "--keep",
        "by-negative-mass",
        "--data",
        data.to_str().unwrap(),
        "--preset",
        "mnist",
        "--samples",
        "256",
    ];
    let o = ratio(&[&args[..], &["--plan", "--json", "-"]].concat());
    o.success();
    let plan = o.json();
    let slots = plan["slots"].as_array().unwrap();
    let scores: Vec<f64> = slots
        .iter()
        .map(|s| s["score"].as_f64().expect("every slot scored"))
        .collect();
    assert!(scores.iter().all(|&x| (0.0..=1.0).contains(&x)), "{scores:?}");
    // The one kept activation is the one with the most negative mass.
    let kept: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i]["decision"]["action"] == "keep")
        .collect();
    assert_eq!(kept.len(), 1);
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap();
    assert_eq!(kept[0], best);
    assert!(plan["policy"]["keep"] == "by-negative-mass");
    // Without data the policy is refused with a clear message.
    let o = ratio(&["convert", m.to_str().unwrap(), "--keep", "by-negative-mass"]);
    o.fails(&["needs --data"]);
}
