use prost::Message;

use super::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr, GraphBuilder};
use crate::ir::tensor;
use crate::proto::GraphProto;
use crate::proto::tensor_proto::DataType;
use crate::validate::validate;

/// x → Conv(w, b) → c → Relu → r → Neg → y (graph output), plus a Constant feeding nothing but kept.
fn chain() -> GraphProto {
    let mut b = GraphBuilder::new("g");
    let x = b.input("x", DataType::Float, &[Some(1), Some(1), Some(2), Some(2)]);
    let w = b.init_f32("w", &[1, 1, 1, 1], &[2.0]);
    let bias = b.init_f32("b", &[1], &[0.5]);
    let c = b.op("Conv", "c", &[&x, &w, &bias], vec![]);
    let r = b.op("Relu", "r", &[&c], vec![]);
    let y = b.op("Neg", "y", &[&r], vec![]);
    b.output(&y, DataType::Float, &[Some(1), Some(1), Some(2), Some(2)]);
    b.graph
        .value_info
        .push(build::value_info(&c, DataType::Float, &[Some(1)]));
    b.graph
        .value_info
        .push(build::value_info(&r, DataType::Float, &[Some(1)]));
    b.finish()
}

fn idx(g: &GraphProto, op: &str) -> usize {
    g.node.iter().position(|n| n.op() == op).unwrap()
}

fn ops(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.op()).collect()
}

fn outputs(g: &GraphProto) -> Vec<String> {
    g.output.iter().filter_map(|v| v.name.clone()).collect()
}

fn assert_valid(g: &GraphProto) {
    let p = validate(g);
    assert!(p.is_empty(), "{p:?}");
}

fn rejected(g: &GraphProto, p: Patch) -> String {
    let mut edited = g.clone();
    let e = p.apply(&mut edited).unwrap_err().to_string();
    assert_eq!(
        edited.encode_to_vec(),
        g.encode_to_vec(),
        "a rejected patch changed the graph ({e})"
    );
    e
}

#[test]
fn shunt_preserves_output_name() {
    let mut g = chain();
    let neg = idx(&g, "Neg");
    let mut p = Patch::new();
    p.shunt(neg);
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(outputs(&g), vec!["y"]);
    let last = g.node.last().unwrap();
    assert_eq!((last.op(), last.output[0].as_str()), ("Identity", "y"));
}

#[test]
fn shunt_chain_resolves_to_the_first_input_and_drops_stale_value_info() {
    let mut b = GraphBuilder::new("g");
    let x = b.input("x", DataType::Float, &[Some(1)]);
    let r1 = b.op("Relu", "r1", &[&x], vec![]);
    let r2 = b.op("Relu", "r2", &[&r1], vec![]);
    let y = b.op("Neg", "y", &[&r2], vec![]);
    b.output(&y, DataType::Float, &[Some(1)]);
    b.graph
        .value_info
        .push(build::value_info(&r1, DataType::Float, &[Some(1)]));
    let mut g = b.finish();
    let mut p = Patch::new();
    p.shunt(1).shunt(0);
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(ops(&g), vec!["Neg"]);
    assert_eq!(g.node[0].input[0], "x");
    assert!(g.value_info.is_empty(), "value_info of the removed '{r1}' must go");
}

#[test]
fn replace_may_add_outputs_but_not_change_them() {
    let g = chain();
    let relu = idx(&g, "Relu");
    let mut p = Patch::new();
    p.replace(relu, build::node("Relu", "r", &["c"], &["other"], vec![]));
    assert!(rejected(&g, p).contains("changes its outputs"));

    let mut g2 = g.clone();
    let mut p = Patch::new();
    let pool = build::node(
        "MaxPool",
        "r",
        &["c"],
        &["r", "r_idx"],
        vec![("kernel_shape", Attr::Ints(vec![1, 1]))],
    );
    p.replace(relu, pool);
    p.apply(&mut g2).unwrap();
    assert_valid(&g2);
    assert_eq!(g2.node[relu].output, vec!["r", "r_idx"]);
}

#[test]
fn added_nodes_are_sorted_before_their_readers() {
    let mut g = chain();
    // Scale the conv output by 3 for the Relu only: Mul is appended but read by an earlier node.
    let mut p = Patch::new();
    p.set_initializer(tensor::from_f32("three", &[], &[3.0]));
    p.add(build::node("Mul", "scale", &["c", "three"], &["c3"], vec![]));
    let relu = idx(&g, "Relu");
    let mut new_relu = g.node[relu].clone();
    new_relu.input[0] = "c3".into();
    p.replace(relu, new_relu);
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(ops(&g), vec!["Conv", "Mul", "Relu", "Neg"]);
    assert!(g.initializer.iter().any(|t| t.name.as_deref() == Some("three")));
}

#[test]
fn retarget_rewires_readers_and_keeps_graph_outputs_unless_asked() {
    let mut g = chain();
    let mut p = Patch::new();
    p.add(build::node("Abs", "abs", &["c"], &["c_abs"], vec![]));
    p.retarget("c", "c_abs");
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(ops(&g), vec!["Conv", "Abs", "Relu", "Neg"]);
    // The added node still reads the old value: retargets apply to the graph's own nodes.
    assert_eq!(g.node[1].input[0], "c");
    assert_eq!(g.node[2].input[0], "c_abs");

    let mut g = chain();
    let mut p = Patch::new();
    p.add(build::node("Abs", "abs", &["y"], &["y_abs"], vec![]));
    p.retarget("y", "y_abs");
    p.apply(&mut g).unwrap();
    assert_eq!(outputs(&g), vec!["y"]);

    let mut g = chain();
    let mut p = Patch::new();
    p.add(build::node("Abs", "abs", &["y"], &["y_abs"], vec![]));
    p.retarget_outputs("y", "y_abs");
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(outputs(&g), vec!["y_abs"]);
}

#[test]
fn fuse_replaces_a_group_in_place_and_checks_outside_readers() {
    let mut g = chain();
    let (conv, relu) = (idx(&g, "Conv"), idx(&g, "Relu"));
    let fused = build::node("Conv", "c_relu", &["x", "w", "b"], &["r"], vec![]);
    let mut p = Patch::new();
    p.fuse(&[conv, relu], fused.clone());
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(ops(&g), vec!["Conv", "Neg"]);
    assert_eq!(g.node[0].name_or_output(), "c_relu");
    let vi: Vec<_> = g.value_info.iter().filter_map(|v| v.name.as_deref()).collect();
    assert_eq!(vi, vec!["r"], "value_info of the fused-away 'c' must go");

    // With another reader of the inner value 'c', the fuse would leave it dangling.
    let mut g = chain();
    let mut b = GraphBuilder::from_graph(g);
    let extra = b.op("Abs", "abs", &["c"], vec![]);
    b.output(&extra, DataType::Float, &[None]);
    g = b.finish();
    let mut p = Patch::new();
    p.fuse(&[idx(&g, "Conv"), idx(&g, "Relu")], fused);
    let e = rejected(&g, p);
    assert!(e.contains("reads 'c'"), "{e}");
}

#[test]
fn remove_with_readers_left_is_rejected_atomically() {
    let g = chain();
    let mut p = Patch::new();
    p.set_initializer(tensor::from_f32("w", &[1, 1, 1, 1], &[7.0]));
    p.remove(idx(&g, "Relu"));
    let e = rejected(&g, p);
    assert!(e.contains("'r'"), "{e}");
}

#[test]
fn insert_after_a_produced_value_keeps_every_reader_and_output_name() {
    let mut g = chain();
    let mut p = Patch::new();
    p.insert_after("y", build::node("Abs", "y_abs", &["y"], &["y"], vec![]));
    p.insert_after("c", build::node("Neg", "c_neg", &["c"], &["c"], vec![]));
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(ops(&g), vec!["Conv", "Neg", "Relu", "Neg", "Abs"]);
    assert_eq!(outputs(&g), vec!["y"]);
    assert_eq!(g.node[0].output[0], "c__pre");
    assert_eq!(g.node[1].input[0], "c__pre");
    assert_eq!(g.node[1].output[0], "c");
    assert_eq!(g.node[2].input[0], "c");
    assert!(!g.value_info.iter().any(|v| v.name.as_deref() == Some("c")));
}

#[test]
fn insert_after_a_graph_input_rewires_its_readers() {
    let mut g = chain();
    let mut p = Patch::new();
    p.insert_after("x", build::node("Neg", "x_neg", &["x"], &["x"], vec![]));
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(g.node[0].op(), "Neg");
    assert_eq!(g.node[0].input[0], "x");
    assert_eq!(g.node[1].input[0], g.node[0].output[0]);
    assert_ne!(g.node[0].output[0], "x");

    let g = chain();
    let mut p = Patch::new();
    p.insert_after("x", build::node("Neg", "bad", &["x"], &["z"], vec![]));
    assert!(rejected(&g, p).contains("single output 'x'"));
    let mut p = Patch::new();
    p.insert_after("nope", build::node("Neg", "bad", &["nope"], &["nope"], vec![]));
    assert!(rejected(&g, p).contains("no value 'nope'"));
}

#[test]
fn initializers_are_set_in_place_appended_and_dropped_when_unused() {
    let mut g = chain();
    let conv = idx(&g, "Conv");
    let mut new_conv = g.node[conv].clone();
    new_conv.input[1] = "w2".into();
    let mut p = Patch::new();
    p.replace(conv, new_conv);
    p.set_initializer(tensor::from_f32("b", &[1], &[-1.0]));
    p.set_initializer(tensor::from_f32("w2", &[1, 1, 1, 1], &[4.0]));
    p.drop_if_unused("w").drop_if_unused("b");
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    let names: Vec<_> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    assert_eq!(names, vec!["b", "w2"]);
    assert_eq!(tensor::to_f32(&g.initializer[0], None).unwrap(), vec![-1.0]);
}

#[test]
fn set_constant_only_on_constant_nodes() {
    let mut b = GraphBuilder::new("g");
    let k = tensor::from_f32("", &[1], &[1.0]);
    let c = b.op("Constant", "k", &[], vec![("value", Attr::Tensor(k))]);
    let y = b.op("Neg", "y", &[&c], vec![]);
    b.output(&y, DataType::Float, &[Some(1)]);
    let mut g = b.finish();
    let mut p = Patch::new();
    p.set_constant(1, tensor::from_f32("k", &[1], &[5.0]));
    assert!(rejected(&g, p).contains("not a Constant"));
    let mut p = Patch::new();
    p.set_constant(0, tensor::from_f32("k", &[1], &[5.0]));
    p.apply(&mut g).unwrap();
    let t = g.node[0].get_t("value").unwrap().unwrap();
    assert_eq!(tensor::to_f32(t, None).unwrap(), vec![5.0]);
    assert_eq!(g.node[0].attribute.len(), 1);
}

#[test]
fn cycles_double_edits_and_duplicate_producers_are_rejected() {
    let g = chain();
    let relu = idx(&g, "Relu");
    let conv = idx(&g, "Conv");
    let mut new_conv = g.node[conv].clone();
    new_conv.input[0] = "r".into();
    let mut p = Patch::new();
    p.replace(conv, new_conv);
    assert!(rejected(&g, p).contains("cycle"));

    let mut p = Patch::new();
    p.shunt(relu).remove(relu);
    assert!(rejected(&g, p).contains("edited twice"));

    let mut p = Patch::new();
    p.add(build::node("Abs", "abs", &["x"], &["r"], vec![]));
    assert!(rejected(&g, p).contains("produced twice"));
}

#[test]
fn inputs_and_outputs_are_added_and_value_info_can_be_cleared() {
    let mut g = chain();
    let mut p = Patch::new();
    p.add_input(build::value_info("s", DataType::Float, &[]));
    p.add(build::node("Mul", "scaled", &["r", "s"], &["rs"], vec![]));
    p.add_output(build::value_info("rs", DataType::Float, &[None]));
    p.clear_value_info();
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(outputs(&g), vec!["y", "rs"]);
    assert_eq!(g.input.len(), 2);
    assert!(g.value_info.is_empty());
}

#[test]
fn an_empty_patch_changes_nothing() {
    let g = chain();
    let mut edited = g.clone();
    assert!(Patch::new().is_empty());
    Patch::new().apply(&mut edited).unwrap();
    assert_eq!(edited.encode_to_vec(), g.encode_to_vec());
}

#[test]
fn set_outputs_chooses_the_outputs_and_keeps_known_types() {
    let mut g = chain();
    let mut p = Patch::new();
    p.set_outputs(&["c".to_string(), "y".to_string()]);
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(outputs(&g), vec!["c", "y"]);
    assert_eq!(build::value_info_dims(&g.output[0]), Some(vec![Some(1)]));
    assert_eq!(build::value_info_dims(&g.output[1]).map(|d| d.len()), Some(4));

    let g = chain();
    let mut p = Patch::new();
    p.set_outputs(&["nope".to_string()]);
    assert!(rejected(&g, p).contains("'nope' is never produced"));
}

#[test]
fn a_part_built_beside_the_graph_is_added_whole() {
    let mut g = chain();
    let mut b = GraphBuilder::reserving(&g);
    let s = b.input("scale", DataType::Float, &[]);
    let two = b.init_f32("y", &[], &[2.0]);
    let z = b.op("Mul", "y", &["y", &two], vec![]);
    let z = b.op("Mul", &z, &[&z, &s], vec![]);
    b.output(&z, DataType::Float, &[None]);
    // Names of the graph are avoided: the initializer and outputs called "y" get fresh names.
    assert_ne!(two, "y");
    let mut p = Patch::new();
    p.add_part(b.finish());
    p.apply(&mut g).unwrap();
    assert_valid(&g);
    assert_eq!(ops(&g), vec!["Conv", "Relu", "Neg", "Mul", "Mul"]);
    assert_eq!(outputs(&g), vec!["y".to_string(), z]);
    assert_eq!(g.input.len(), 2);
    assert!(g.initializer.iter().any(|t| t.name.as_deref() == Some(two.as_str())));
}
