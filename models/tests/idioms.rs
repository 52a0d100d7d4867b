//! Every export-idiom fixture is a valid graph within ORT's IR/opset limits, infers to `logits` [N, 10], and
//! carries the idiom its doc comment names.

use std::collections::HashMap;

use converters::Model;
use converters::ir::attr::NodeExt;
use converters::ir::build::value_info_dims;
use converters::proto::ModelProto;
use converters::validate::validate;
use models::idioms;

fn ops(m: &ModelProto) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for n in &m.graph.as_ref().unwrap().node {
        *c.entry(n.op().to_string()).or_default() += 1;
    }
    c
}

fn attr_i(m: &ModelProto, node: &str, attr: &str) -> Option<i64> {
    let g = m.graph.as_ref().unwrap();
    g.node
        .iter()
        .find(|n| n.name_or_output() == node)
        .and_then(|n| n.get_i(attr).ok().flatten())
}

#[test]
fn every_fixture_is_valid_within_limits_and_infers_its_logits() {
    for (name, build) in idioms::all() {
        let m = build();
        let g = m.graph.as_ref().unwrap();
        assert!(validate(g).is_empty(), "{name}: {:?}", validate(g));
        assert!(m.ir_version.unwrap() <= 10, "{name}");
        assert!(m.opset_import.iter().all(|o| o.version.unwrap() <= 21), "{name}");
        let model = Model::new(m.clone());
        let s = converters::shapes::infer(&model, &HashMap::new(), Some(2));
        assert!(s.failures.is_empty(), "{name}: {:?}", s.failures);
        assert_eq!(s.shape("logits"), Some(&[2, 10][..]), "{name}");
        // Deterministic: the same bytes twice.
        assert_eq!(build(), m, "{name}");
    }
}

#[test]
fn dynamo_static_flatten_fixes_the_batch_everywhere() {
    let m = idioms::dynamo_static_flatten();
    let g = m.graph.as_ref().unwrap();
    assert_eq!((m.ir_version, m.opset_import[0].version), (Some(10), Some(18)));
    assert_eq!(
        value_info_dims(&g.input[0]).unwrap(),
        vec![Some(2), Some(3), Some(8), Some(8)]
    );
    assert_eq!(value_info_dims(&g.output[0]).unwrap(), vec![Some(2), Some(10)]);
    // Global pooling as ReduceMean with the axes as an input (opset 18), flatten as Reshape to [2, 8].
    let mean = g.node.iter().find(|n| n.name_or_output() == "node_mean").unwrap();
    assert_eq!(mean.input.len(), 2);
    let view = g.node.iter().find(|n| n.name_or_output() == "node_view").unwrap();
    let t = g
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(view.input[1].as_str()))
        .unwrap();
    assert_eq!(converters::ir::tensor::to_i64(t, None).unwrap(), vec![2, 8]);
    assert!(!ops(&m).contains_key("GlobalAveragePool") && !ops(&m).contains_key("Flatten"));
}

#[test]
fn shufflenet_targets_are_shape_arithmetic_over_a_dynamic_batch() {
    let m = idioms::shufflenet_shape_shuffle();
    let g = m.graph.as_ref().unwrap();
    assert_eq!(value_info_dims(&g.input[0]).unwrap()[0], None);
    let c = ops(&m);
    for (op, at_least) in [
        ("Shape", 5),
        ("Gather", 5),
        ("Unsqueeze", 6),
        ("Div", 2),
        ("Cast", 2),
        ("Slice", 2),
    ] {
        assert!(c.get(op).copied().unwrap_or(0) >= at_least, "{op}: {c:?}");
    }
    // No Reshape target is an initializer: all are computed.
    let inits: Vec<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    for n in g.node.iter().filter(|n| n.op() == "Reshape") {
        assert!(!inits.contains(&n.input[1].as_str()), "{}", n.name_or_output());
    }
    // At two batch sizes the targets fold to that batch.
    for batch in [3, 5] {
        let s = converters::shapes::infer(&Model::new(m.clone()), &HashMap::new(), Some(batch));
        assert_eq!(
            s.get("shuffle.target1").unwrap().ints.as_deref(),
            Some(&[batch, 2, 4, 8, 8][..])
        );
    }
}

#[test]
fn dedup_bn_identity_ties_every_bn_tensor_to_one_initializer() {
    let m = idioms::dedup_bn_identity();
    let g = m.graph.as_ref().unwrap();
    let bns: Vec<_> = g.node.iter().filter(|n| n.op() == "BatchNormalization").collect();
    assert_eq!(bns.len(), 3);
    assert_eq!(ops(&m)["Identity"], 8, "2 BNs × 4 tensors read through Identity");
    for n in &bns {
        assert_eq!(n.get_i("training_mode").unwrap(), Some(0));
    }
    let ix = converters::ir::index::GraphIndex::new(g);
    for slot in 1..5 {
        let sources: std::collections::HashSet<String> = bns
            .iter()
            .map(|n| {
                let mut v = n.input[slot].clone();
                while let Some(p) = ix.producer_node(g, &v) {
                    v = p.input[0].clone();
                }
                v
            })
            .collect();
        assert_eq!(sources.len(), 1, "slot {slot}: {sources:?}");
    }
}

#[test]
fn mobilenet_v3_has_hard_activations_and_no_bn() {
    let m = idioms::mobilenet_v3_hard();
    let c = ops(&m);
    assert_eq!(c["HardSwish"], 3);
    assert_eq!(c["HardSigmoid"], 1);
    assert!(!c.contains_key("BatchNormalization"));
    let g = m.graph.as_ref().unwrap();
    let hs = g.node.iter().find(|n| n.op() == "HardSigmoid").unwrap();
    assert!((hs.get_f("alpha").unwrap().unwrap() - 1.0 / 6.0).abs() < 1e-7);
}

#[test]
fn ceil_mode_pools_change_the_output_size() {
    let m = idioms::ceil_mode_pools();
    assert_eq!(attr_i(&m, "maxpool1", "ceil_mode"), Some(1));
    assert_eq!(attr_i(&m, "transition_pool", "ceil_mode"), Some(1));
    assert_eq!(attr_i(&m, "branch_pool", "count_include_pad"), Some(1));
    let s = converters::shapes::infer(&Model::new(m), &HashMap::new(), Some(1));
    // floor mode would give 4×4 and 2×2.
    assert_eq!(s.shape("maxpool1"), Some(&[1, 8, 5, 5][..]));
    assert_eq!(s.shape("transition_pool"), Some(&[1, 8, 3, 3][..]));
}

#[test]
fn bn_folded_has_conv_biases_and_no_bn() {
    let m = idioms::bn_folded();
    let c = ops(&m);
    assert!(!c.contains_key("BatchNormalization"));
    let g = m.graph.as_ref().unwrap();
    assert!(g.node.iter().filter(|n| n.op() == "Conv").all(|n| n.input.len() == 3));
}
