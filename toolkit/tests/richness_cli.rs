//! `ratio richness` and `ratio leaky` end to end on the real MNIST checkpoint and test set: the table, the JSON
//! record (schema, provenance, figures written), negative-mass scores from the data path, and bad input.

mod richness_support;

use std::path::Path;

use converters::ir::attr::NodeExt;
use converters::ir::build::{self, Attr};
use ratio_testkit::Run;
use reports::schema::Record;
use reports::schema::richness::{LeakyBody, RichnessBody};
use richness_support::{mnist_model, shared};
use toolkit::analysis::richness::source::negative_mass_scores;

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!().args(args).arg("--threads").arg("1").run()
}

fn paths() -> (String, String) {
    (
        shared("models/mnist_cnn.onnx").display().to_string(),
        shared("data/mnist").display().to_string(),
    )
}

#[test]
fn richness_writes_table_record_and_plots() {
    let (model, data) = paths();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let plots = dir.path().join("plots");
    let out = ratio(&[
        "richness",
        &model,
        "--data",
        &data,
        "--preset",
        "mnist",
        "--samples",
        "600",
        "--json",
        json.to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
    ]);
    out.success();
    let stdout = &out.stdout;
    for needle in [
        "/conv_layers/conv_layers.1/Relu",
        "effrank",
        "CKA (debiased, 600 samples)",
        "ORT 1.31.1",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from\n{stdout}");
    }
    let rec = Record::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rec.schema, "ratio/richness/v1");
    assert_eq!(rec.provenance.ort_version.as_deref(), Some("1.31.1"));
    assert_eq!(
        rec.inputs[0].sha256,
        "0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150"
    );
    let body: RichnessBody = rec.body_as().unwrap();
    assert_eq!(body.samples, 600);
    assert_eq!(body.models[0].layers.len(), 4);
    assert!(body.models[0].accuracy.unwrap() > 0.97);
    assert_eq!(body.data.preset, "mnist");
    assert_eq!(body.data.split.as_deref(), Some("test"));
    assert!(!body.data.sha256.is_empty() && !body.data.preset_fingerprint.is_empty());
    // Every figure as SVG and PNG, recorded with its hash.
    for stem in ["effective_rank", "probe_accuracy", "negative_mass", "cka"] {
        for ext in ["svg", "png"] {
            let p = plots.join(format!("{stem}.{ext}"));
            assert!(p.exists(), "{} missing", p.display());
            assert!(
                rec.outputs
                    .iter()
                    .any(|o| Path::new(&o.path) == p && o.sha256.len() == 64)
            );
        }
    }
    assert!(
        std::fs::read_to_string(plots.join("cka.svg"))
            .unwrap()
            .contains("conv_layers.7")
    );
}

#[test]
fn json_to_stdout_and_two_models() {
    let (model, data) = paths();
    let out = ratio(&[
        "richness",
        &model,
        &model,
        "--data",
        &data,
        "--preset",
        "mnist",
        "--samples",
        "300",
        "--no-probe",
        "--layers",
        "re:conv",
        "--json",
        "-",
    ]);
    out.success();
    let rec = Record::from_json(&out.stdout).unwrap();
    let body: RichnessBody = rec.body_as().unwrap();
    assert_eq!(body.models.len(), 2);
    // `re:conv` matches the conv nodes and their ReLUs by name; only rectifiers carry the rectifier metrics.
    let layers = &body.models[0].layers;
    assert!(layers.iter().any(|l| l.op == "Conv") && layers.iter().any(|l| l.op == "Relu"));
    assert!(layers.iter().all(|l| (l.op == "Relu") == l.dead_fraction.is_some()));
    assert!(layers.iter().all(|l| l.probe_accuracy.is_none()));
    let cka = &body.cka[0];
    assert!((0..layers.len()).all(|i| (cka.values[i][i].unwrap() - 1.0).abs() < 1e-9));
}

#[test]
fn richness_bad_input() {
    let (model, data) = paths();
    let run = |extra: &[&str]| {
        let mut args = vec!["richness", model.as_str(), "--data", data.as_str()];
        if !extra.contains(&"--preset") {
            args.extend(["--preset", "mnist"]);
        }
        args.extend_from_slice(extra);
        let out = ratio(&args);
        assert_eq!(out.code, Some(2), "{}", out.stdout);
        out.stderr
    };
    let e = run(&["--layers", "nope"]);
    assert!(
        e.contains("no layer named 'nope'") && e.contains("mnist_cnn.onnx"),
        "{e}"
    );
    let e = run(&["--samples", "5"]);
    assert!(e.contains("too few samples for a linear probe"), "{e}");
    let e = run(&["--preset", "cifar10"]);
    assert!(e.contains("cifar10"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.onnx");
    let mut m = mnist_model();
    let g = m.graph_mut();
    g.input[0] = build::value_info(
        "image",
        converters::proto::tensor_proto::DataType::Float,
        &[None, Some(1), Some(28), Some(28)],
    );
    for n in &mut g.node {
        for i in &mut n.input {
            if i == "input" {
                *i = "image".into();
            }
        }
    }
    m.save(&other, false).unwrap();
    let e = run(&[other.to_str().unwrap()]);
    assert!(e.contains("different inputs") && e.contains("image[?,1,28,28]"), "{e}");
}

#[test]
fn leaky_command_reconstructs_the_output() {
    let (model, data) = paths();
    let dir = tempfile::tempdir().unwrap();
    let leaky_path = dir.path().join("mnist_leaky.onnx");
    let mut m = mnist_model();
    for n in &mut m.graph_mut().node {
        if n.op() == "Relu" {
            n.op_type = Some("LeakyRelu".into());
            n.attribute.push(build::attr("alpha", Attr::Float(0.1)));
        }
    }
    m.save(&leaky_path, false).unwrap();
    let lp = leaky_path.to_str().unwrap();
    let out = ratio(&[
        "leaky",
        lp,
        "--alpha",
        "0.1",
        "--data",
        &data,
        "--preset",
        "mnist",
        "--samples",
        "200",
    ]);
    out.success();
    let table = out.stdout;
    assert!(
        table.contains("exact enumeration") && table.contains("reconstruction: relative error"),
        "{table}"
    );
    let out = ratio(&[
        "leaky",
        lp,
        "--data",
        &data,
        "--preset",
        "mnist",
        "--samples",
        "100",
        "--json",
        "-",
    ]);
    out.success();
    let body: LeakyBody = Record::from_json(&out.stdout).unwrap().body_as().unwrap();
    assert!(body.exact && body.layers.len() == 4 && body.groups.len() == 5);
    assert!(
        body.reconstruction_rel_error < 1e-5,
        "{}",
        body.reconstruction_rel_error
    );
    let out = ratio(&["leaky", &model, "--data", &data, "--preset", "mnist"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("no LeakyRelu"), "{}", out.stderr);
}

#[test]
fn negative_mass_scores_from_a_dataset() {
    let (_, data) = paths();
    let scores = negative_mass_scores(&mnist_model(), &data, "mnist", 500).unwrap();
    assert_eq!(scores.len(), 4);
    assert!(scores.values().all(|&s| s > 0.0 && s < 1.0));
    let e = negative_mass_scores(&mnist_model(), "/nonexistent/data", "mnist", 10).unwrap_err();
    assert!(format!("{e:#}").contains("/nonexistent/data"), "{e:#}");
}
