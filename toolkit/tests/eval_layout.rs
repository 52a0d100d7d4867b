//! f16 and NHWC inputs end to end: mnist_cnn wrapped so it takes an f16 NHWC image (Cast → Transpose in front of
//! the original network), evaluated with `--dtype f16 --layout nhwc`, must score like the original.

use std::path::{Path, PathBuf};

use converters::ir::build::{Attr, node, value_info};
use converters::proto::tensor_proto::DataType;
use ratio_testkit::{Run, shared};
use reports::schema::Record;
use reports::schema::eval::EvalRecord;

/// mnist_cnn with input `image` f16 [N,28,28,1] → Cast f32 → Transpose to NCHW → the original graph.
fn f16_nhwc_model(dir: &Path) -> PathBuf {
    let mut m = converters::Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let g = m.graph_mut();
    assert_eq!(g.input[0].name.as_deref(), Some("input"));
    g.input[0] = value_info("image", DataType::Float16, &[None, Some(28), Some(28), Some(1)]);
    let front = [
        node(
            "Cast",
            "to_f32",
            &["image"],
            &["image_f32"],
            vec![("to", Attr::Int(DataType::Float as i64))],
        ),
        node(
            "Transpose",
            "to_nchw",
            &["image_f32"],
            &["input"],
            vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
        ),
    ];
    g.node.splice(0..0, front);
    let out = dir.join("mnist_f16_nhwc.onnx");
    std::fs::write(&out, m.to_inline_bytes().unwrap()).unwrap();
    out
}

fn eval(model: &Path, extra: &[&str]) -> Run {
    ratio_testkit::ratio!()
        .args([
            "eval",
            model.to_str().unwrap(),
            "--data",
            shared("data/mnist").to_str().unwrap(),
        ])
        .args([
            "--preset",
            "mnist",
            "--limit",
            "1000",
            "--threads",
            "1",
            "--no-progress",
            "--json",
            "-",
        ])
        .args(extra)
        .run()
}

fn body(o: &Run) -> EvalRecord {
    o.success();
    Record::from_json(&o.stdout).unwrap().body_as().unwrap()
}

#[test]
fn f16_nhwc_model_scores_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let wrapped = f16_nhwc_model(dir.path());
    let base = body(&eval(&shared("models/mnist_cnn.onnx"), &[]));
    let half = body(&eval(&wrapped, &["--dtype", "f16", "--layout", "nhwc"]));
    assert_eq!(half.models[0].input, "image");
    assert_eq!(half.preset.pipeline["layout"], "nhwc");
    assert_eq!(half.preset.pipeline["dtype"], "f16");
    assert_ne!(half.preset.fingerprint, base.preset.fingerprint);
    // f16 keeps ~3 significant digits of the normalised pixels; on 1000 images at most a couple of predictions
    // near a decision boundary may flip.
    let correct = |r: &EvalRecord| r.models[0].per_class.iter().map(|c| c.correct).sum::<u64>() as i64;
    assert!(
        (correct(&half) - correct(&base)).abs() <= 2,
        "{} vs {}",
        correct(&half),
        correct(&base)
    );

    // The same model with the default f32 NCHW preset is refused with both reasons spelled out.
    let o = eval(&wrapped, &[]);
    let e = &o.stderr;
    assert_eq!(o.code, Some(2), "{e}");
    assert!(
        e.contains("input 'image' is f16, the preset produces f32 (use --dtype f16)"),
        "{e}"
    );
    let o = eval(&wrapped, &["--dtype", "f16"]);
    let e = &o.stderr;
    // Read as NCHW, [N,28,28,1] has 28 channels.
    assert!(
        e.contains("(Nchw): the model wants channels 28, the preset gives 1"),
        "{e}"
    );
}
