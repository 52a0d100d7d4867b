//! The one op table answers every consumer's question for every registered op: shape inference (never panics),
//! a gradient decision, an activation class that `act::classify` honours, slot walking, affinity and joins. The
//! lists each consumer kept before the table existed are pinned here, so moving them changed no behaviour.

use std::collections::BTreeSet;

use converters::act::{self, ActKind};
use converters::autodiff::Grad;
use converters::ir::build::{self, Attr, GraphBuilder};
use converters::ir::index::GraphIndex;
use converters::ops::{self, Affine, DataInputs, OpSpec, Target, Walk};
use converters::proto::tensor_proto::DataType;
use converters::shapes::ValInfo;

fn table() -> &'static ops::Registry {
    ops::registry().expect("the table builds")
}

fn names(pred: impl Fn(&OpSpec) -> bool) -> BTreeSet<&'static str> {
    table().specs().filter(|s| pred(s)).map(|s| s.op_type).collect()
}

fn set(v: &[&'static str]) -> BTreeSet<&'static str> {
    v.iter().copied().collect()
}

#[test]
fn every_op_is_registered_exactly_once() {
    let listed: usize = ops::FAMILIES.iter().map(|f| f.len()).sum();
    assert_eq!(table().op_types().len(), listed);
    for op in table().op_types() {
        assert_eq!(table().get(op).unwrap().op_type, op);
    }
}

#[test]
fn every_op_has_a_gradient_decision_and_these_have_no_rule() {
    // An op added without a rule shows up here and must be listed on purpose.
    let missing = names(|s| matches!(s.grad, Grad::Missing));
    assert_eq!(
        missing,
        set(&[
            "Abs",
            "Celu",
            "ConvTranspose",
            "Elu",
            "Erf",
            "Exp",
            "Gelu",
            "GlobalMaxPool",
            "GroupNormalization",
            "InstanceNormalization",
            "LRN",
            "Log",
            "LogSoftmax",
            "LpNormalization",
            "Max",
            "Min",
            "Pow",
            "Reciprocal",
            "ReduceMax",
            "ReduceMin",
            "ReduceSum",
            "ReduceSumSquare",
            "Selu",
            "Softmax",
            "Softplus",
            "Softsign",
            "Sqrt",
            "Tanh",
            "Tile",
        ])
    );
    let none = names(|s| matches!(s.grad, Grad::NonDifferentiable));
    for op in [
        "Shape",
        "Size",
        "Constant",
        "ConstantOfShape",
        "Equal",
        "Greater",
        "Less",
        "Not",
        "Floor",
    ] {
        assert!(none.contains(op), "{op} should stop gradients explicitly");
    }
}

#[test]
fn every_op_the_torchvision_families_export_has_a_rule_or_stops_gradients() {
    // The union of the op lists of 13 real exports (ResNet, ShuffleNet-V2 legacy and dynamo, MobileNet-V2/V3,
    // GoogLeNet, Inception-v3, MnasNet, DenseNet, EfficientNet, RegNet, SqueezeNet; legacy, PRESERVE and
    // dynamo exporters, torch 2.15) plus the shape ops dynamic exports add.
    for op in [
        "Add",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "Div",
        "Dropout",
        "Expand",
        "Flatten",
        "Gather",
        "Gemm",
        "GlobalAveragePool",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "MatMul",
        "MaxPool",
        "Mul",
        "Pad",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Shape",
        "Sigmoid",
        "Slice",
        "Split",
        "Squeeze",
        "Sub",
        "Transpose",
        "Unsqueeze",
    ] {
        let spec = table().get(op).unwrap_or_else(|| panic!("{op} is not registered"));
        assert!(!matches!(spec.grad, Grad::Missing), "{op} has no gradient rule");
    }
}

fn info(shape: &[i64], ints: Option<Vec<i64>>) -> ValInfo {
    ValInfo {
        shape: shape.to_vec(),
        elem: if ints.is_some() {
            DataType::Int64 as i32
        } else {
            DataType::Float as i32
        },
        ints,
    }
}

#[test]
fn shape_rules_answer_odd_inputs_with_errors_not_panics() {
    let shapes: Vec<ValInfo> = vec![
        info(&[], None),
        info(&[3], None),
        info(&[2, 3, 4, 4], None),
        info(&[1, 1], None),
        info(&[0, 3, 1, 1], None),
        info(&[], Some(vec![7])),
        info(&[2], Some(vec![0, -1])),
        info(&[4], Some(vec![2, 3, 4, 4])),
        info(&[1], Some(vec![i64::MAX])),
    ];
    let attr_sets: Vec<Vec<(&str, Attr)>> = vec![
        vec![],
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ("ceil_mode", Attr::Int(1)),
            ("axis", Attr::Int(1)),
            ("axes", Attr::Ints(vec![0, 5])),
            ("perm", Attr::Ints(vec![3, 2, 1, 0])),
            ("group", Attr::Int(0)),
            ("to", Attr::Int(1)),
        ],
        vec![("axis", Attr::Int(-9)), ("kernel_shape", Attr::Ints(vec![9]))],
    ];
    for spec in table().specs() {
        for attrs in &attr_sets {
            for arity in 0..=3 {
                for first in &shapes {
                    for rest in &shapes {
                        let inputs: Vec<String> = (0..arity).map(|i| format!("i{i}")).collect();
                        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                        let n = build::node(spec.op_type, "n", &refs, &["y", "z"], attrs.clone());
                        let ins: Vec<Option<&ValInfo>> =
                            (0..arity).map(|i| Some(if i == 0 { first } else { rest })).collect();
                        // Any result is fine; a panic fails the test.
                        let _ = (spec.infer)(&n, &ins);
                    }
                }
            }
        }
    }
}

#[test]
fn activation_classes_are_what_classify_returns() {
    for spec in table().specs() {
        let Some(kind) = spec.act.kind() else { continue };
        let mut b = GraphBuilder::new("t");
        b.input("x", DataType::Float, &[Some(1), Some(2)]);
        let mut ins = vec!["x".to_string()];
        match spec.op_type {
            "Clip" => {
                ins.push(b.init_f32("lo", &[], &[0.0]));
                ins.push(b.init_f32("hi", &[], &[6.0]));
            }
            "PRelu" => ins.push(b.init_f32("slope", &[1], &[0.25])),
            _ => {}
        }
        let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
        b.op(spec.op_type, "a", &refs, vec![]);
        let g = b.finish();
        let ix = GraphIndex::new(&g);
        assert_eq!(act::classify(&g, &ix, &g.node[0]), Some(kind), "{}", spec.op_type);
    }
    // ReLU6 only with bounds 0 and 6.
    let mut b = GraphBuilder::new("t");
    b.input("x", DataType::Float, &[Some(1), Some(2)]);
    let lo = b.init_f32("lo", &[], &[0.0]);
    let hi = b.init_f32("hi", &[], &[1.0]);
    b.op("Clip", "c", &["x", &lo, &hi], vec![]);
    let g = b.finish();
    assert_eq!(act::classify(&g, &GraphIndex::new(&g), &g.node[0]), None);
    let kinds: BTreeSet<ActKind> = table().specs().filter_map(|s| s.act.kind()).collect();
    assert_eq!(kinds, ActKind::ALL.into_iter().collect());
}

#[test]
fn slot_walking_and_structure_keep_the_converters_lists() {
    // What slots.rs listed before the table.
    assert_eq!(
        names(|s| s.walk == Walk::Through(DataInputs::All)),
        set(&[
            "Add",
            "AveragePool",
            "Cast",
            "Concat",
            "Div",
            "Dropout",
            "Flatten",
            "Identity",
            "MaxPool",
            "Mul",
            "Squeeze",
            "Sub",
            "Transpose",
            "Unsqueeze",
        ])
    );
    assert_eq!(
        names(|s| s.walk == Walk::Through(DataInputs::First)),
        set(&[
            "BatchNormalization",
            "GroupNormalization",
            "InstanceNormalization",
            "Pad",
            "Reshape",
        ])
    );
    assert_eq!(names(|s| s.walk == Walk::Conv), set(&["Conv", "ConvTranspose"]));
    assert_eq!(names(|s| s.walk == Walk::Fc), set(&["Gemm", "MatMul"]));
    assert_eq!(
        names(|s| s.global),
        set(&["Flatten", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"])
    );
    assert_eq!(names(|s| s.downsamples), set(&["AveragePool", "Conv", "MaxPool"]));
    assert_eq!(names(|s| s.join), set(&["Add", "Concat", "Sum"]));
    assert_eq!(names(|s| s.identity), set(&["Dropout", "Identity"]));
    assert_eq!(names(|s| s.shape_only), set(&["Shape", "Size"]));
    // What inspect counted as layers.
    assert_eq!(
        names(|s| s.macs.is_some()),
        set(&["BatchNormalization", "Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu"])
    );
}

#[test]
fn affinity_keeps_the_leaky_decomposition_lists() {
    // The 24 ops leaky.rs listed as non-affine: all still are.
    let no = names(|s| s.affine == Affine::No);
    for op in [
        "Softmax",
        "LogSoftmax",
        "Sigmoid",
        "Tanh",
        "Clip",
        "PRelu",
        "Elu",
        "Selu",
        "Celu",
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Erf",
        "Exp",
        "Log",
        "Sqrt",
        "Pow",
        "Abs",
        "Max",
        "Min",
        "GlobalMaxPool",
        "ReduceMax",
        "ReduceMin",
        "LpNormalization",
    ] {
        assert!(no.contains(op), "{op}");
    }
    // Affine in one operand at a time (leaky refused Mul/Div/MatMul of two data tensors; Gemm joins them).
    assert_eq!(
        names(|s| s.affine == Affine::PerOperand),
        set(&["Div", "Gemm", "MatMul", "Mul"])
    );
    // The piecewise-linear ops the decomposition freezes.
    assert_eq!(
        names(|s| s.affine == Affine::Gated),
        set(&["LeakyRelu", "MaxPool", "Relu"])
    );
}

#[test]
fn training_facts_are_consistent() {
    for s in table().specs() {
        // Carried state is what a training-mode forward updates.
        assert!(s.state_slots.is_empty() || s.forward_train.is_some(), "{}", s.op_type);
        // Parameters only where a rule could train them (ConvTranspose waits for one).
        if !s.param_slots.is_empty() {
            assert!(
                matches!(s.grad, Grad::Rule(_)) || s.op_type == "ConvTranspose",
                "{}",
                s.op_type
            );
        }
    }
    assert_eq!(names(|s| s.target != Target::None), set(&["Expand", "Reshape"]));
}
