//! Building train-step graphs without running them: the registry, errors before any work, structural validity,
//! IR/opset limits, and writing learned values back into the inference model.

use converters::Model;
use converters::autodiff::{BnMode, GradError, StateKind, TrainStepConfig, build_train_step};
use converters::ir::build::{self, Attr, GraphBuilder};
use converters::ops::{self, OpSpec, Registry};
use converters::proto::tensor_proto::DataType;
use converters::validate::validate;
use ratio_testkit::shared;

fn cfg(batch: i64) -> TrainStepConfig {
    TrainStepConfig {
        batch_size: batch,
        ..Default::default()
    }
}

#[test]
fn registering_an_op_twice_is_an_error() {
    let families: Vec<&[OpSpec]> = ops::FAMILIES.iter().copied().chain([ops::activation::SPECS]).collect();
    let err = GradError::from(Registry::from_specs(&families).err().expect("duplicate must fail"));
    assert!(matches!(err, GradError::DuplicateRule(ref op) if op == "Relu"), "{err}");
    let reg = converters::autodiff::registry().unwrap();
    for op in [
        "Conv",
        "BatchNormalization",
        "MaxPool",
        "Gemm",
        "Concat",
        "Clip",
        "PRelu",
    ] {
        assert!(reg.get(op).is_some(), "{op} has no rule");
    }
}

fn tiny(ops_: &[&str]) -> Model {
    let mut b = GraphBuilder::new("t");
    b.input("x", DataType::Float, &[None, Some(4)]);
    let w = b.init_f32("w", &[4, 3], &[0.1; 12]);
    let mut v = b.op("Gemm", "g", &["x", &w], vec![]);
    for op in ops_ {
        v = b.op(op, "a", &[&v], vec![]);
    }
    b.output(&v, DataType::Float, &[None, Some(3)]);
    Model::new(build::model(b.finish(), "t"))
}

#[test]
fn unsupported_ops_are_listed_by_name_in_one_error() {
    let err = build_train_step(&tiny(&["Tanh", "Softplus", "Tanh"]), &cfg(2)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("Softplus (1 node") && msg.contains("Tanh (2 nodes"),
        "{msg}"
    );
}

#[test]
fn nothing_trainable_is_an_error() {
    let mut c = cfg(2);
    c.freeze = Some(regex::Regex::new("^w$").unwrap());
    let err = build_train_step(&tiny(&["Relu"]), &c).unwrap_err();
    assert!(matches!(err, GradError::NoTrainableParams), "{err}");
    let mut c = cfg(2);
    c.train_only = Some(regex::Regex::new("nomatch").unwrap());
    assert!(matches!(
        build_train_step(&tiny(&[]), &c).unwrap_err(),
        GradError::NoTrainableParams
    ));
}

#[test]
fn mnist_cnn_train_step_is_valid_ir10_opset17_with_folded_shape_chain() {
    let m = Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let step = build_train_step(&m, &cfg(8)).unwrap();
    let g = step.model.graph.as_ref().unwrap();
    assert!(validate(g).is_empty(), "{:?}", validate(g));
    assert!(step.model.ir_version.unwrap() <= 10);
    assert!(step.model.opset_import.iter().all(|o| o.version.unwrap() <= 17));
    assert_eq!(step.input_shape, vec![8, 1, 28, 28]);
    assert_eq!(step.num_classes, 10);
    // 3 convs + 2 Gemms, weights and biases, each with a momentum slot; no BN.
    let params = step.state.iter().filter(|s| s.kind == StateKind::Param).count();
    let moms = step.state.iter().filter(|s| s.kind == StateKind::Momentum).count();
    assert_eq!((params, moms), (10, 10));
    // Parameters are graph inputs, never initializers (initializers are constants to ORT).
    for s in &step.state {
        assert!(g.input.iter().any(|i| i.name.as_deref() == Some(s.input.as_str())));
        assert!(
            g.initializer
                .iter()
                .all(|t| t.name.as_deref() != Some(s.input.as_str()))
        );
        assert!(g.output.iter().any(|o| o.name.as_deref() == Some(s.output.as_str())));
    }
}

#[test]
fn to_inference_writes_weights_and_running_stats_back() {
    let mut b = GraphBuilder::new("bn");
    b.input("x", DataType::Float, &[None, Some(2), Some(3), Some(3)]);
    let w = b.init_f32("conv.w", &[2, 2, 1, 1], &[1.0, 0.0, 0.0, 1.0]);
    // The scale reaches BN through a Constant node + Identity, as some exporters write it.
    let sc = crate_constant(&mut b, "bn.scale", &[1.0, 1.0]);
    let scale = b.op("Identity", "bn.scale.id", &[&sc], vec![]);
    let beta = b.init_f32("bn.bias", &[2], &[0.0, 0.0]);
    let rm = b.init_f32("bn.rm", &[2], &[0.0, 0.0]);
    let rv = b.init_f32("bn.rv", &[2], &[1.0, 1.0]);
    let c = b.op("Conv", "c", &["x", &w], vec![]);
    let n = b.op("BatchNormalization", "n", &[&c, &scale, &beta, &rm, &rv], vec![]);
    let p = b.op("GlobalAveragePool", "p", &[&n], vec![]);
    let f = b.op("Flatten", "logits", &[&p], vec![("axis", Attr::Int(1))]);
    b.output(&f, DataType::Float, &[None, Some(2)]);
    let m = Model::new(build::model(b.finish(), "t"));
    let step = build_train_step(&m, &cfg(4)).unwrap();
    let names: Vec<(&str, StateKind)> = step.state.iter().map(|s| (s.name.as_str(), s.kind)).collect();
    assert!(names.contains(&("bn.scale", StateKind::Param)), "{names:?}");
    assert!(names.contains(&("bn.rm", StateKind::RunningMean)));
    assert!(names.contains(&("bn.rv", StateKind::RunningVar)));
    let values: Vec<Vec<f32>> = step
        .state
        .iter()
        .enumerate()
        .map(|(i, s)| vec![i as f32 + 0.5; s.init.len()])
        .collect();
    let back = step.to_inference(&values).unwrap();
    let g = back.graph();
    for (s, v) in step.state.iter().zip(&values) {
        if !matches!(
            s.kind,
            StateKind::Param | StateKind::RunningMean | StateKind::RunningVar
        ) {
            continue;
        }
        let t = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(s.name.as_str()))
            .or_else(|| {
                g.node
                    .iter()
                    .find(|n| n.output.first() == Some(&s.name))
                    .and_then(|n| n.attribute.iter().find_map(|a| a.t.as_ref()))
            })
            .unwrap_or_else(|| panic!("{} not found", s.name));
        assert_eq!(&converters::ir::tensor::to_f32(t, None).unwrap(), v, "{}", s.name);
    }
    // Frozen BN: running statistics are constants again, γ/β still train.
    let mut c = cfg(4);
    c.bn = BnMode::Frozen;
    let frozen = build_train_step(&m, &c).unwrap();
    assert!(
        frozen
            .state
            .iter()
            .all(|s| !matches!(s.kind, StateKind::RunningMean | StateKind::RunningVar))
    );
    assert!(frozen.state.iter().any(|s| s.name == "bn.bias"));
}

fn crate_constant(b: &mut GraphBuilder, name: &str, v: &[f32]) -> String {
    let t = converters::ir::tensor::from_f32("", &[v.len() as i64], v);
    let out = b.fresh(name);
    b.graph.node.push(build::node(
        "Constant",
        &format!("{out}/Constant"),
        &[],
        &[&out],
        vec![("value", Attr::Tensor(t))],
    ));
    out
}

#[test]
fn bad_configuration_is_rejected() {
    let m = tiny(&["Relu"]);
    assert!(matches!(
        build_train_step(&m, &cfg(0)).unwrap_err(),
        GradError::Config(_)
    ));
    let mut c = cfg(2);
    c.label_smoothing = 1.5;
    assert!(
        build_train_step(&m, &c)
            .unwrap_err()
            .to_string()
            .contains("label smoothing")
    );
}

#[test]
fn efficientnet_lite0_builds_with_relu6_and_depthwise_convs() {
    let m = Model::load(shared("models/efficientnet_lite0.onnx")).unwrap();
    let step = build_train_step(&m, &cfg(2)).unwrap();
    let g = step.model.graph.as_ref().unwrap();
    assert!(validate(g).is_empty(), "{:?}", validate(g));
    assert_eq!(step.num_classes, 1000);
    // The export folded BN into the convs; all ~4.6M weights (depthwise included) train.
    assert!(step.num_params() > 4_500_000, "{}", step.num_params());
    assert!(m.graph().node.iter().any(|n| n.op_type.as_deref() == Some("Clip")));
}
