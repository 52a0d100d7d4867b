//! `ratio model`: writes a valid model whose sha256 it reports, lists what it can build, and fails clearly.

use converters::ir::Model;
use converters::ir::model::sha256_file;
use ratio_testkit::Run;

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!().args(args).run()
}

#[test]
fn model_writes_what_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r20.onnx");
    let o = ratio(&[
        "model",
        "resnet20",
        "-o",
        out.to_str().unwrap(),
        "--classes",
        "100",
        "--seed",
        "3",
        "--fold-bn",
        "--json",
        "-",
    ]);
    o.success();
    let rec = reports::schema::Record::from_json(&o.stdout).unwrap();
    assert_eq!(rec.schema, "ratio/model/v1");
    let report: reports::schema::model::ModelBody = rec.body_as().unwrap();
    assert_eq!(report.sha256, sha256_file(&out).unwrap());
    assert_eq!(rec.outputs[0].sha256, report.sha256);
    assert_eq!(report.config.as_ref().unwrap().seed, 3);
    assert_eq!(report.folded_bn_pairs, 21);
    assert_eq!(report.op_histogram["Relu"], 19);
    assert!(rec.provenance.machine.cores >= 1);
    let m = Model::load(&out).unwrap();
    assert!(converters::validate::validate(m.graph()).is_empty());
    assert!(
        !m.graph()
            .node
            .iter()
            .any(|n| n.op_type.as_deref() == Some("BatchNormalization"))
    );
    let fc = m
        .graph()
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some("fc.weight"))
        .unwrap();
    assert_eq!(fc.dims, [100, 64]);
    // Same arguments, same file.
    let again = dir.path().join("again.onnx");
    let o2 = ratio(&[
        "model",
        "resnet20",
        "-o",
        again.to_str().unwrap(),
        "--classes",
        "100",
        "--seed",
        "3",
        "--fold-bn",
    ]);
    o2.success();
    assert_eq!(sha256_file(&again).unwrap(), report.sha256);
}

#[test]
fn model_writes_fixtures_and_lists_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fire.onnx");
    let o = ratio(&["model", "pattern:squeezenet_fire", "-o", out.to_str().unwrap()]);
    o.success();
    let m = Model::load(&out).unwrap();
    assert_eq!(m.graph().name.as_deref(), Some("squeezenet_fire"));
    let list = ratio(&["model", "--list"]);
    let text = list.stdout;
    assert!(
        text.contains("resnet56") && text.contains("pattern:if_reads_outer_relu"),
        "{text}"
    );
}

#[test]
fn model_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.onnx");
    let o = ratio(&["model", "resnet21", "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(2));
    let err = o.stderr;
    assert!(
        err.contains("unknown model 'resnet21'") && err.contains("resnet20"),
        "{err}"
    );
    let o = ratio(&["model", "plain", "-o", out.to_str().unwrap(), "--input-size", "2"]);
    assert_eq!(o.code, Some(2));
    let err = o.stderr;
    assert!(err.contains("plain: invalid configuration"), "{err}");
    let o = ratio(&["model", "pattern:nope", "-o", out.to_str().unwrap()]);
    assert!(o.stderr.contains("unknown fixture 'nope'"));
    assert!(!out.exists(), "a failed build must not leave a file");
    // An existing file is kept unless --force.
    std::fs::write(&out, b"keep me").unwrap();
    let o = ratio(&["model", "plain", "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("pass --force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let o = ratio(&["model", "plain", "-o", out.to_str().unwrap(), "--force"]);
    o.success();
    assert!(Model::load(&out).is_ok());
}
