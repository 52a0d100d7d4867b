use std::collections::HashMap;

use super::batch_stats::batch_statistics;
use super::bn_insert::{ChannelStats, insert_bn_after_convs};
use super::extract::extract;
use super::fold_bn::fold_bn;
use super::nchwc::{DOMAIN, lower_convs};
use super::set_inputs::{InputUpdate, set_inputs};
use crate::ir::attr::NodeExt;
use crate::ir::build::{Attr, GraphBuilder};
use crate::ir::tensor;
use crate::proto::GraphProto;
use crate::proto::tensor_proto::DataType;
use crate::validate::validate;

/// x → conv1 (w1, b1) → relu → conv2 (w1 shared, no bias) → y, 2 channels 1×1 kernels.
fn two_convs() -> GraphProto {
    let mut b = GraphBuilder::new("g");
    let x = b.input("x", DataType::Float, &[None, Some(2), Some(3), Some(3)]);
    let w = b.init_f32("w1", &[2, 2, 1, 1], &[1.0, 2.0, -1.0, 0.5]);
    let bias = b.init_f32("b1", &[2], &[0.1, -0.2]);
    let c1 = b.op("Conv", "conv1", &[&x, &w, &bias], vec![]);
    let r = b.op("Relu", "relu", &[&c1], vec![]);
    let y = b.op("Conv", "conv2", &[&r, &w], vec![]);
    b.output(&y, DataType::Float, &[None, Some(2), Some(3), Some(3)]);
    b.finish()
}

fn init_values(g: &GraphProto, name: &str) -> Vec<f32> {
    let t = g.initializer.iter().find(|t| t.name.as_deref() == Some(name)).unwrap();
    tensor::to_f32(t, None).unwrap()
}

#[test]
fn set_inputs_writes_private_tensors_in_place_and_unshares_tied_ones() {
    let mut g = two_convs();
    let w = tensor::from_f32("conv2.weight", &[2, 2, 1, 1], &[3.0; 4]);
    let b = tensor::from_f32("conv2.bias", &[2], &[1.0, 2.0]);
    let b1 = tensor::from_f32("unused", &[2], &[5.0, 6.0]);
    let written = set_inputs(
        &mut g,
        vec![
            InputUpdate {
                node: 2,
                input: 1,
                tensor: w,
            },
            InputUpdate {
                node: 2,
                input: 2,
                tensor: b,
            },
            InputUpdate {
                node: 0,
                input: 2,
                tensor: b1,
            },
        ],
        vec![],
    )
    .unwrap();
    assert!(validate(&g).is_empty());
    // w1 is tied between the convs: conv2 gets its own copy, conv1 keeps w1. b1 is private: set in place.
    assert_eq!(written, vec!["conv2.weight", "conv2.bias", "b1"]);
    assert_eq!(g.node[2].input, vec!["relu", "conv2.weight", "conv2.bias"]);
    assert_eq!(g.node[0].input[1], "w1");
    assert_eq!(init_values(&g, "w1"), vec![1.0, 2.0, -1.0, 0.5]);
    assert_eq!(init_values(&g, "b1"), vec![5.0, 6.0]);

    let mut g2 = two_convs();
    let e = set_inputs(
        &mut g2,
        vec![InputUpdate {
            node: 2,
            input: 3,
            tensor: tensor::from_f32("x", &[1], &[0.0]),
        }],
        vec![],
    )
    .unwrap_err();
    assert!(e.to_string().contains("conv2"), "{e}");
}

#[test]
fn extract_keeps_what_the_outputs_need() {
    let mut g = two_convs();
    extract(&mut g, &["relu".to_string()]).unwrap();
    assert!(validate(&g).is_empty());
    let ops: Vec<_> = g.node.iter().map(|n| n.op()).collect();
    assert_eq!(ops, vec!["Conv", "Relu"]);
    assert_eq!(g.output.len(), 1);
    assert_eq!(g.output[0].name.as_deref(), Some("relu"));
    let mut g = two_convs();
    extract(&mut g, &["conv1".to_string()]).unwrap();
    assert_eq!(g.node.len(), 1);
    // w1 is still read by conv1; nothing else to drop.
    assert_eq!(g.initializer.len(), 2);
}

#[test]
fn reinserted_bn_folds_back_to_the_same_convolution() {
    let original = two_convs();
    let mut g = original.clone();
    let stats = HashMap::from([
        (
            "conv1".to_string(),
            ChannelStats {
                mean: vec![0.5, -1.0],
                var: vec![4.0, 0.25],
            },
        ),
        (
            "conv2".to_string(),
            ChannelStats {
                mean: vec![0.0, 2.0],
                var: vec![1.0, 9.0],
            },
        ),
    ]);
    let inserted = insert_bn_after_convs(&mut g, &stats).unwrap();
    assert!(validate(&g).is_empty(), "{:?}", validate(&g));
    assert_eq!(inserted.len(), 2);
    let ops: Vec<_> = g.node.iter().map(|n| n.op()).collect();
    assert_eq!(
        ops,
        vec!["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization"]
    );
    // Readers and the graph output keep their names.
    assert_eq!(g.node[2].input[0], "conv1");
    assert_eq!(g.output[0].name.as_deref(), Some("conv2"));
    assert_eq!(g.node[1].output[0], "conv1");

    let pairs = fold_bn(&mut g).unwrap();
    assert_eq!(pairs.len(), 2);
    assert!(validate(&g).is_empty());
    let ops: Vec<_> = g.node.iter().map(|n| n.op()).collect();
    assert_eq!(ops, vec!["Conv", "Relu", "Conv"]);
    assert_eq!(g.output[0].name.as_deref(), Some("conv2"));
    // An identity BN folds to (almost exactly) the weights it started from; conv2 gains a zero bias.
    for (conv, want_w, want_b) in [
        (0, vec![1.0, 2.0, -1.0, 0.5], vec![0.1, -0.2]),
        (2, vec![1.0, 2.0, -1.0, 0.5], vec![0.0, 0.0]),
    ] {
        let w = init_values(&g, &g.node[conv].input[1]);
        let b = init_values(&g, &g.node[conv].input[2]);
        for (got, want) in w.iter().zip(&want_w).chain(b.iter().zip(&want_b)) {
            assert!((got - want).abs() < 1e-5, "node {conv}: {w:?} {b:?}");
        }
    }
}

#[test]
fn batch_statistics_replaces_bn_and_exposes_its_moments() {
    let mut b = GraphBuilder::new("g");
    let x = b.input("x", DataType::Float, &[None, Some(2), Some(3), Some(3)]);
    let ones = b.init_f32("g", &[2], &[1.0, 1.0]);
    let zeros = b.init_f32("b", &[2], &[0.0, 0.0]);
    let bn = b.op(
        "BatchNormalization",
        "bn",
        &[&x, &ones, &zeros, &zeros, &ones],
        vec![("epsilon", Attr::Float(1e-3))],
    );
    let y = b.op("Relu", "y", &[&bn], vec![]);
    b.output(&y, DataType::Float, &[None, Some(2), Some(3), Some(3)]);
    for opset in [17, 18] {
        let mut g = b.graph.clone();
        let probes = batch_statistics(&mut g, opset).unwrap();
        assert!(validate(&g).is_empty(), "{:?}", validate(&g));
        assert_eq!(probes.len(), 1);
        assert!(!g.node.iter().any(|n| n.op() == "BatchNormalization"));
        let outs: Vec<_> = g.output.iter().filter_map(|o| o.name.clone()).collect();
        assert_eq!(
            outs,
            vec![
                y.clone(),
                probes[0].mean.clone(),
                probes[0].var.clone(),
                probes[0].shape.clone()
            ]
        );
        let means: Vec<_> = g.node.iter().filter(|n| n.op() == "ReduceMean").collect();
        assert_eq!(means.len(), 2);
        assert_eq!(means[0].input.len(), if opset >= 18 { 2 } else { 1 });
    }
}

/// x [1, 16, 8, 8] → a: 16→16 3×3 (pads 1) → b: grouped 16→16 → c: 16→12 1×1 → y.
fn three_convs() -> crate::ir::Model {
    let mut b = GraphBuilder::new("g");
    let x = b.input("x", DataType::Float, &[Some(1), Some(16), Some(8), Some(8)]);
    let wa = b.init_f32("wa", &[16, 16, 3, 3], &[0.01; 16 * 16 * 9]);
    let wb = b.init_f32("wb", &[16, 8, 1, 1], &[0.1; 16 * 8]);
    let wc = b.init_f32("wc", &[12, 16, 1, 1], &[0.1; 12 * 16]);
    let ya = b.op("Conv", "a", &[&x, &wa], vec![("pads", Attr::Ints(vec![1; 4]))]);
    let yb = b.op("Conv", "b", &[&ya, &wb], vec![("group", Attr::Int(2))]);
    let yc = b.op("Conv", "c", &[&yb, &wc], vec![]);
    b.output(&yc, DataType::Float, &[Some(1), Some(12), Some(8), Some(8)]);
    crate::ir::Model::new(crate::ir::build::model(b.finish(), "test"))
}

#[test]
fn nchwc_lowers_ungrouped_convs_whose_channels_fill_whole_blocks() {
    let mut m = three_convs();
    let y = m.graph().output[0].name.clone().unwrap();
    assert_eq!(
        lower_convs(&mut m, 8).unwrap(),
        1,
        "only 'a': 'b' is grouped, 'c' has 12 outputs"
    );
    let g = m.graph();
    let ops: Vec<(&str, &str)> = g.node.iter().map(|n| (n.domain_str(), n.op())).collect();
    for op in ["ReorderInput", "Conv", "ReorderOutput"] {
        assert_eq!(ops.iter().filter(|&&o| o == (DOMAIN, op)).count(), 1, "{op} in {ops:?}");
    }
    assert_eq!(
        ops.iter().filter(|&&o| o == ("", "Conv")).count(),
        2,
        "b and c stay: {ops:?}"
    );
    let conv = g
        .node
        .iter()
        .find(|n| n.domain_str() == DOMAIN && n.op() == "Conv")
        .unwrap();
    assert_eq!(conv.get_ints("kernel_shape").unwrap(), Some(vec![3, 3]));
    assert_eq!(conv.get_ints("pads").unwrap(), Some(vec![1; 4]));
    let out = g.node.iter().find(|n| n.op() == "ReorderOutput").unwrap();
    assert_eq!(out.get_i("channels").unwrap(), Some(16));
    assert_eq!(g.output[0].name.as_ref(), Some(&y), "graph output keeps its name");
    assert!(m.proto.opset_import.iter().any(|o| o.domain.as_deref() == Some(DOMAIN)));
    // 'c' has 12 = 3·4 outputs: a block of 4 takes it too; a block of 1 lowers nothing and adds no import.
    assert_eq!(lower_convs(&mut three_convs(), 4).unwrap(), 2);
    let mut untouched = three_convs();
    assert_eq!(lower_convs(&mut untouched, 1).unwrap(), 0);
    assert_eq!(untouched.proto.opset_import.len(), 1);
}
