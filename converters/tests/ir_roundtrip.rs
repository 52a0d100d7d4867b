//! Real checkpoints decode, re-encode byte-identically, and survive external-data save/load.

use converters::ir::Model;
use converters::ir::tensor;
use converters::validate::validate;
use prost::Message;
use ratio_testkit::shared;

#[test]
fn shared_models_round_trip_byte_identical() {
    for name in ["models/mnist_cnn.onnx", "models/efficientnet_lite0.onnx"] {
        let path = shared(name);
        let original = std::fs::read(&path).unwrap();
        let m = Model::load(&path).unwrap();
        assert!(validate(m.graph()).is_empty(), "{name}: {:?}", validate(m.graph()));
        assert_eq!(m.proto.encode_to_vec(), original, "{name} re-encodes differently");
    }
}

#[test]
fn external_data_save_and_reload_keeps_weights() {
    let m = Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ext.onnx");
    m.save(&out, true).unwrap();
    assert!(dir.path().join("ext.onnx.data").is_file());
    let back = Model::load(&out).unwrap();
    assert!(back.has_external_data());
    for (a, b) in m.graph().initializer.iter().zip(&back.graph().initializer) {
        let va = tensor::to_f32(a, m.tensor_bytes(a).unwrap().as_ref()).unwrap();
        let vb = tensor::to_f32(b, back.tensor_bytes(b).unwrap().as_ref()).unwrap();
        assert_eq!(va, vb, "tensor {:?}", a.name);
    }
    // Inlining for the runtime gives back exactly the original model.
    let inline = back.to_inline_bytes().unwrap();
    let re = Model::from_bytes(inline.into()).unwrap();
    assert_eq!(re.graph().initializer.len(), m.graph().initializer.len());
    // A missing side file is reported at load, naming the file.
    std::fs::remove_file(dir.path().join("ext.onnx.data")).unwrap();
    let err = Model::load(&out).unwrap_err().to_string();
    assert!(err.contains("ext.onnx") && err.contains("does not exist"), "{err}");
}

#[test]
fn truncated_and_garbage_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(shared("models/mnist_cnn.onnx")).unwrap();
    for (i, bytes) in [
        original[..original.len() / 2].to_vec(),
        b"hello, not onnx".to_vec(),
        vec![],
    ]
    .iter()
    .enumerate()
    {
        let p = dir.path().join(format!("bad{i}.onnx"));
        std::fs::write(&p, bytes).unwrap();
        let err = Model::load(&p).unwrap_err().to_string();
        assert!(err.contains(&format!("bad{i}.onnx")), "{err}");
    }
}

#[test]
fn streaming_writer_is_byte_identical_to_prost() {
    for name in ["models/mnist_cnn.onnx", "models/efficientnet_lite0.onnx"] {
        let m = Model::load(shared(name)).unwrap();
        let mut streamed = Vec::new();
        converters::ir::stream::write_model(&m.proto, &mut streamed).unwrap();
        assert!(streamed == m.proto.encode_to_vec(), "{name}: streamed bytes differ");
        // And after edits that touch model-level and graph-level fields on both sides of the graph.
        let mut edited = m.clone();
        edited.set_metadata("k", "v");
        edited.graph_mut().doc_string = Some("doc".into());
        edited.graph_mut().initializer.truncate(1);
        let mut streamed = Vec::new();
        converters::ir::stream::write_model(&edited.proto, &mut streamed).unwrap();
        assert!(
            streamed == edited.proto.encode_to_vec(),
            "{name} edited: streamed bytes differ"
        );
    }
    // save() returns the sha256 of exactly what it wrote, and an unchanged save reproduces the source bytes.
    let dir = tempfile::tempdir().unwrap();
    let m = Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let out = dir.path().join("same.onnx");
    let sha = m.save(&out, false).unwrap();
    assert_eq!(Some(sha), m.source_sha256);
    assert!(std::fs::read(out).unwrap() == std::fs::read(shared("models/mnist_cnn.onnx")).unwrap());
}
