//! `fold_bn` computes the same function with fewer nodes, and folds only what it may.

mod common;

use common::{assert_valid, batch, count, max_abs, max_abs_diff, reference};
use converters::ir::attr::NodeExt;
use converters::ir::build::{Attr, attr};
use converters::proto::ModelProto;
use converters::proto::tensor_proto::DataLocation;
use models::stats::param_count;
use models::{
    DenseNetConfig, ModelConfig, ModelsError, PlainConfig, VggConfig, densenet_bc, fold_bn, fold_bn_report, patterns,
    plain_cnn, resnet20, vgg,
};

/// Logits of `kept` and `folded` on the same seeded batch agree to float rounding. The bound is relative to the
/// logits' magnitude: folding reassociates (x·W)·s into x·(W·s), an O(ε·depth) change per layer, and 1e-4 of
/// the largest logit leaves two orders of magnitude of slack over what 20 layers of f32 rounding produce.
fn assert_same_function(what: &str, kept: &ModelProto, folded: &ModelProto, c: usize, s: usize) {
    let x = batch(3, c, s, 42);
    let a = reference::run(kept, &[("input", x.clone())]).unwrap();
    let b = reference::run(folded, &[("input", x)]).unwrap();
    for (name, va) in &a {
        let vb = &b[name];
        let diff = max_abs_diff(va, vb);
        let scale = max_abs(va).max(1.0);
        assert!(
            diff <= 1e-4 * scale,
            "{what}: output {name} differs by {diff} (scale {scale})"
        );
    }
}

#[test]
fn resnet20_folds_every_bn_and_keeps_its_function() {
    let cfg = ModelConfig::new(3, 8, 10).with_seed(5).with_random_bn_stats(true);
    let kept = resnet20(&cfg).unwrap();
    let (folded, pairs) = fold_bn_report(&kept).unwrap();
    assert_valid("resnet20 folded", &folded);
    assert_eq!(pairs.len(), 21);
    assert!(
        pairs
            .iter()
            .any(|p| p.conv == "layer2.0.downsample.0" && p.bn == "layer2.0.downsample.1")
    );
    assert_eq!(count(&folded, "BatchNormalization"), 0);
    assert_eq!(count(&folded, "Conv"), 21);
    let g = folded.graph.as_ref().unwrap();
    for conv in g.node.iter().filter(|n| n.op() == "Conv") {
        assert_eq!(
            conv.input.len(),
            3,
            "{} has no bias after folding",
            conv.name_or_output()
        );
    }
    // BN outputs keep their names, so downstream nodes are untouched.
    let c1 = g.node.iter().find(|n| n.name_or_output() == "layer1.0.conv1").unwrap();
    assert_eq!(c1.output[0], "layer1.0.bn1");
    assert_eq!(c1.input[1], "layer1.0.conv1.weight");
    assert!(
        !g.initializer
            .iter()
            .any(|t| t.name.as_deref().unwrap().contains("running_"))
    );
    // Per folded pair γ,β (2C) become one bias (C): 21 pairs over 16·7 + 32·7 + 64·7 channels.
    assert_eq!(param_count(&kept) - param_count(&folded), 16 * 7 + 32 * 7 + 64 * 7);
    assert_eq!(folded.metadata_props.last().unwrap().value.as_deref(), Some("21"));
    assert_same_function("resnet20", &kept, &folded, 3, 8);
}

#[test]
fn vgg_and_plain_fold_and_agree() {
    let base = ModelConfig::new(3, 8, 5)
        .with_seed(9)
        .with_random_bn_stats(true)
        .with_width(0.25);
    let kept = vgg(&VggConfig::new(base)).unwrap();
    let folded = fold_bn(&kept).unwrap();
    assert_eq!(count(&folded, "BatchNormalization"), 0);
    assert_same_function("vgg", &kept, &folded, 3, 8);

    let kept = plain_cnn(&PlainConfig::new(ModelConfig::new(1, 8, 10).with_random_bn_stats(true))).unwrap();
    let folded = fold_bn(&kept).unwrap();
    assert_eq!(count(&folded, "BatchNormalization"), 0);
    assert_same_function("plain", &kept, &folded, 1, 8);
}

#[test]
fn densenet_folds_only_bn_that_directly_follows_a_private_conv() {
    let base = ModelConfig::new(3, 8, 10).with_seed(2).with_random_bn_stats(true);
    let kept = densenet_bc(&DenseNetConfig {
        block_layers: vec![2, 2],
        ..DenseNetConfig::new(base)
    })
    .unwrap();
    let (folded, pairs) = fold_bn_report(&kept).unwrap();
    assert_valid("densenet folded", &folded);
    // Only each layer's norm2 (after its private conv1) folds. norm1 of the first layer reads conv0, whose
    // output the concat also reads; transitions and norm5 read a Concat.
    assert_eq!(pairs.len(), 4);
    assert!(pairs.iter().all(|p| p.bn.ends_with(".norm2")), "{pairs:?}");
    assert_eq!(
        count(&folded, "BatchNormalization"),
        count(&kept, "BatchNormalization") - 4
    );
    assert_same_function("densenet", &kept, &folded, 3, 8);
}

#[test]
fn patterns_fold_where_allowed_and_keep_their_function() {
    // (fixture, input channels, size, expected folds)
    let cases: [(&str, usize, usize, usize); 6] = [
        ("resnext_block", 64, 8, 3),
        ("mobilenet_v2_inverted_residual", 3, 16, 4),
        ("inception_block", 32, 8, 6),
        // conv2's weight comes through an Identity node, not an initializer: left alone.
        ("constant_and_identity_weights", 3, 8, 0),
        // relu1's output is a graph output, but the conv→BN edge is private: folds.
        ("relu_feeds_graph_output", 3, 8, 2),
        ("preact_resnet_block", 3, 8, 2),
    ];
    for (name, c, s, want) in cases {
        let m = patterns::all().into_iter().find(|(n, _)| *n == name).unwrap().1();
        let (folded, pairs) = fold_bn_report(&m).unwrap();
        assert_valid(name, &folded);
        assert_eq!(pairs.len(), want, "{name}: {pairs:?}");
        assert_same_function(name, &m, &folded, c, s);
    }
}

#[test]
fn fold_is_idempotent() {
    let m = resnet20(&ModelConfig::new(3, 8, 10).with_random_bn_stats(true)).unwrap();
    let once = fold_bn(&m).unwrap();
    let (twice, pairs) = fold_bn_report(&once).unwrap();
    assert!(pairs.is_empty());
    // Only the recorded count differs (21, then 0): the graph is untouched.
    assert!(once.graph == twice.graph, "second fold changed the graph");
}

#[test]
fn training_mode_bn_is_not_folded() {
    let mut m = resnet20(&ModelConfig::new(3, 8, 10)).unwrap();
    let g = m.graph.as_mut().unwrap();
    let bn = g.node.iter_mut().find(|n| n.name.as_deref() == Some("bn1")).unwrap();
    bn.attribute.push(attr("training_mode", Attr::Int(1)));
    let (folded, pairs) = fold_bn_report(&m).unwrap();
    assert_eq!(pairs.len(), 20);
    assert!(
        folded
            .graph
            .unwrap()
            .node
            .iter()
            .any(|n| n.name.as_deref() == Some("bn1"))
    );
}

#[test]
fn shared_weight_gets_a_new_name_and_the_other_user_keeps_the_original() {
    let mut m = resnet20(&ModelConfig::new(3, 8, 10).with_random_bn_stats(true)).unwrap();
    let g = m.graph.as_mut().unwrap();
    // layer1.0.conv2 now also reads layer1.0.conv1's weight (both 16→16 3×3).
    let c2 = g
        .node
        .iter_mut()
        .find(|n| n.name.as_deref() == Some("layer1.0.conv2"))
        .unwrap();
    c2.input[1] = "layer1.0.conv1.weight".into();
    g.initializer
        .retain(|t| t.name.as_deref() != Some("layer1.0.conv2.weight"));
    let folded = fold_bn(&m).unwrap();
    assert_valid("shared weight", &folded);
    let g = folded.graph.as_ref().unwrap();
    let w = |conv: &str| g.node.iter().find(|n| n.name.as_deref() == Some(conv)).unwrap().input[1].clone();
    assert_eq!(w("layer1.0.conv1"), "layer1.0.conv1.weight_folded");
    assert_eq!(w("layer1.0.conv2"), "layer1.0.conv2.weight_folded");
    // Nothing reads the original any more, so it is gone.
    assert!(
        !g.initializer
            .iter()
            .any(|t| t.name.as_deref() == Some("layer1.0.conv1.weight"))
    );
    assert_same_function("shared weight", &m, &folded, 3, 8);
}

#[test]
fn external_data_is_a_clear_error() {
    let mut m = resnet20(&ModelConfig::new(3, 8, 10)).unwrap();
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some("bn1.weight"))
        .unwrap();
    t.data_location = Some(DataLocation::External as i32);
    t.raw_data = None;
    let err = fold_bn(&m).unwrap_err();
    assert!(matches!(err, ModelsError::Fold { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("'bn1'") && msg.contains("bn1.weight") && msg.contains("external"),
        "{msg}"
    );
}
