//! Every pattern fixture is valid, computable, shaped as declared, and its doc comment's claims (activation
//! slots and the layers feeding them) hold.

mod common;

use common::{assert_valid, batch, count, feeding_layers, reference};
use converters::ir::GraphIndex;
use converters::ir::attr::NodeExt;
use converters::ir::build::value_info_dims;
use converters::ir::index::outer_refs;
use converters::proto::ModelProto;
use models::patterns;

fn fixture(name: &str) -> ModelProto {
    patterns::all().into_iter().find(|(n, _)| *n == name).unwrap().1()
}

/// Run on a batch of 2 and check every declared output's shape (batch dim `N` = 2).
fn run(name: &str, m: &ModelProto) -> std::collections::HashMap<String, common::T> {
    let g = m.graph.as_ref().unwrap();
    let dims: Vec<usize> = value_info_dims(&g.input[0])
        .unwrap()
        .iter()
        .map(|d| d.unwrap_or(2) as usize)
        .collect();
    let out =
        reference::run(m, &[("input", batch(dims[0], dims[1], dims[2], 11))]).unwrap_or_else(|e| panic!("{name}: {e}"));
    for o in &g.output {
        let want: Vec<usize> = value_info_dims(o)
            .unwrap()
            .iter()
            .map(|d| d.unwrap_or(2) as usize)
            .collect();
        let got = &out[o.name.as_deref().unwrap()];
        assert_eq!(got.dims, want, "{name}: output {:?}", o.name);
        assert!(got.data.iter().all(|v| v.is_finite()), "{name}");
    }
    out
}

/// (fixture, activation op, [(activation node, layers that feed it)])
type Expect = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
);

const EXPECT: &[Expect] = &[
    (
        "resnext_block",
        "Relu",
        &[("relu1", &["conv1"]), ("relu2", &["conv2"]), ("relu3", &["conv3"])],
    ),
    (
        "mobilenet_v2_inverted_residual",
        "Clip",
        &[
            ("features.0.2", &["features.0.0"]),
            ("features.1.conv.0.2", &["features.1.conv.0.0"]),
            ("features.1.conv.1.2", &["features.1.conv.1.0"]),
        ],
    ),
    (
        "squeezenet_fire",
        "Relu",
        &[
            ("features.1", &["features.0"]),
            ("features.3.squeeze_activation", &["features.3.squeeze"]),
            ("features.3.expand1x1_activation", &["features.3.expand1x1"]),
            ("features.3.expand3x3_activation", &["features.3.expand3x3"]),
        ],
    ),
    (
        "inception_block",
        "Relu",
        &[
            ("branch1.relu", &["branch1.conv"]),
            ("branch2.0.relu", &["branch2.0.conv"]),
            ("branch2.1.relu", &["branch2.1.conv"]),
            ("branch3.0.relu", &["branch3.0.conv"]),
            ("branch3.1.relu", &["branch3.1.conv"]),
            ("branch4.1.relu", &["branch4.1.conv"]),
        ],
    ),
    (
        "shufflenet_channel_shuffle",
        "Relu",
        &[("branch2.2", &["branch2.0"]), ("branch2.7", &["branch2.5"])],
    ),
    (
        "preact_resnet_block",
        "Relu",
        &[
            ("layer1.0.relu1", &["conv1"]),
            ("layer1.0.relu2", &["layer1.0.conv1"]),
            ("layer1.1.relu1", &["conv1", "layer1.0.conv2"]),
            ("layer1.1.relu2", &["layer1.1.conv1"]),
            ("relu", &["layer1.1.conv2", "layer1.1.shortcut"]),
        ],
    ),
    ("legacy_flatten", "Relu", &[("relu", &["conv"]), ("fc_relu", &["fc1"])]),
    (
        "constant_and_identity_weights",
        "Relu",
        &[("relu1", &["conv1"]), ("relu2", &["conv2"])],
    ),
    ("silu_net", "Relu", &[]),
    (
        "leaky_relu_net",
        "LeakyRelu",
        &[("block1.act", &["block1.conv"]), ("block2.act", &["block2.conv"])],
    ),
    (
        "prelu_net",
        "PRelu",
        &[("block1.act", &["block1.conv"]), ("block2.act", &["block2.conv"])],
    ),
    (
        "if_reads_outer_relu",
        "Relu",
        &[("relu1", &["conv1"]), ("relu2", &["conv2"])],
    ),
    (
        "relu_feeds_graph_output",
        "Relu",
        &[("relu1", &["block1.conv"]), ("relu2", &["conv2"])],
    ),
];

#[test]
fn every_fixture_is_valid_computable_and_shaped_as_declared() {
    let all = patterns::all();
    assert_eq!(all.len(), EXPECT.len());
    for (name, build) in all {
        let m = build();
        assert_valid(name, &m);
        assert_eq!(m.graph.as_ref().unwrap().name.as_deref(), Some(name));
        assert_eq!(m.ir_version, Some(8));
        run(name, &m);
        assert!(m == build(), "{name} is not deterministic");
    }
}

#[test]
fn documented_slots_hold() {
    for (name, op, slots) in EXPECT {
        let m = fixture(name);
        assert_eq!(count(&m, op), slots.len(), "{name}: {op} count");
        for (act, feeders) in *slots {
            let node = m
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .find(|n| n.name_or_output() == *act);
            assert_eq!(node.map(|n| n.op()), Some(*op), "{name}: {act}");
            assert_eq!(feeding_layers(&m, act), *feeders, "{name}: layers feeding {act}");
        }
    }
}

#[test]
fn activation_free_and_non_relu_fixtures_hold_no_relu() {
    for name in [
        "mobilenet_v2_inverted_residual",
        "silu_net",
        "leaky_relu_net",
        "prelu_net",
    ] {
        assert_eq!(count(&fixture(name), "Relu"), 0, "{name}");
    }
    let silu = fixture("silu_net");
    for op in ["Clip", "LeakyRelu", "PRelu"] {
        assert_eq!(count(&silu, op), 0);
    }
    assert_eq!((count(&silu, "Sigmoid"), count(&silu, "Mul")), (2, 2));
}

#[test]
fn mobilenet_clip_bounds_are_scalar_initializers_0_and_6() {
    let m = fixture("mobilenet_v2_inverted_residual");
    let g = m.graph.as_ref().unwrap();
    let ix = GraphIndex::new(g);
    for clip in g.node.iter().filter(|n| n.op() == "Clip") {
        let bound = |i: usize| {
            let t = ix.initializer(g, &clip.input[i]).expect("bound is an initializer");
            assert!(t.dims.is_empty());
            converters::ir::tensor::to_f32(t, None).unwrap()[0]
        };
        assert_eq!((bound(1), bound(2)), (0.0, 6.0), "{}", clip.name_or_output());
    }
    assert_eq!(count(&m, "Add"), 1);
    let dw = g
        .node
        .iter()
        .find(|n| n.name_or_output() == "features.1.conv.1.0")
        .unwrap();
    assert_eq!(dw.get_i("group").unwrap(), Some(96));
}

#[test]
fn shufflenet_shuffle_interleaves_the_two_halves() {
    let m = fixture("shufflenet_channel_shuffle");
    let x = batch(2, 24, 8, 11);
    let out = &reference::run(&m, &[("input", x.clone())]).unwrap()["output"];
    // After concat [x1 | branch] and the 2×12 transpose, output channel 2i is x1's channel i = input channel i.
    let plane = 64;
    for n in 0..2 {
        for i in 0..12 {
            let src = &x.data[(n * 24 + i) * plane..][..plane];
            let dst = &out.data[(n * 24 + 2 * i) * plane..][..plane];
            assert_eq!(src, dst, "sample {n} channel {i}");
        }
    }
}

#[test]
fn weights_behind_constant_and_identity_resolve_as_constants() {
    let m = fixture("constant_and_identity_weights");
    let g = m.graph.as_ref().unwrap();
    let ix = GraphIndex::new(g);
    let conv = |name: &str| g.node.iter().find(|n| n.name_or_output() == name).unwrap();
    assert!(ix.initializer(g, &conv("conv1").input[1]).is_none());
    assert_eq!(ix.producer_node(g, &conv("conv1").input[1]).unwrap().op(), "Constant");
    assert_eq!(ix.constant(g, &conv("conv1").input[1]).unwrap().dims, [8, 3, 3, 3]);
    assert_eq!(ix.constant(g, &conv("conv1").input[2]).unwrap().dims, [8]);
    assert_eq!(ix.producer_node(g, &conv("conv2").input[1]).unwrap().op(), "Identity");
    assert_eq!(ix.constant(g, &conv("conv2").input[1]).unwrap().dims, [8, 8, 3, 3]);
}

#[test]
fn if_branches_read_the_outer_relu() {
    let m = fixture("if_reads_outer_relu");
    let g = m.graph.as_ref().unwrap();
    let iff = g.node.iter().find(|n| n.op() == "If").unwrap();
    assert!(
        !iff.input.contains(&"relu1".to_string()),
        "relu1 must be read only from inside the branches"
    );
    assert_eq!(iff.subgraphs().len(), 2);
    assert_eq!(outer_refs(iff), ["relu1", "relu1"]);
    let ix = GraphIndex::new(g);
    let if_index = g.node.iter().position(|n| n.op() == "If").unwrap();
    assert!(ix.consumers_of("relu1").contains(&if_index));
    // Both branches are reachable: a large input makes mean(relu1) > 0.5; a zero input leaves only conv1's bias
    // (|b| ≤ 1/√27 ≈ 0.19 by torch's default init), so the mean stays below the threshold.
    for (scale, branch_out) in [(10.0f32, true), (0.0, false)] {
        let mut x = batch(1, 3, 8, 3);
        x.data.iter_mut().for_each(|v| *v *= scale);
        let mean = {
            let mut one_node = m.clone();
            let g = one_node.graph.as_mut().unwrap();
            g.output[0].name = Some("cond".into());
            reference::run(&one_node, &[("input", x)]).unwrap()["cond"].data[0]
        };
        assert_eq!(mean != 0.0, branch_out, "scale {scale}");
    }
}

#[test]
fn relu_output_is_also_a_graph_output() {
    let m = fixture("relu_feeds_graph_output");
    let g = m.graph.as_ref().unwrap();
    let outs: Vec<&str> = g.output.iter().filter_map(|o| o.name.as_deref()).collect();
    assert_eq!(outs, ["features", "logits"]);
    let relu1 = g.node.iter().find(|n| n.name_or_output() == "relu1").unwrap();
    assert_eq!(relu1.output[0], "features");
    let ix = GraphIndex::new(g);
    assert_eq!(ix.consumers_of("features").len(), 1);
    let out = run("relu_feeds_graph_output", &m);
    assert!(out["features"].data.iter().all(|&v| v >= 0.0));
}

#[test]
fn legacy_flatten_uses_the_shape_chain() {
    let m = fixture("legacy_flatten");
    for op in ["Shape", "Gather", "Unsqueeze", "Reshape"] {
        assert_eq!(count(&m, op), 1, "{op}");
    }
    assert_eq!(count(&m, "Flatten"), 0);
    assert_eq!(run("legacy_flatten", &m)["logits"].dims, [2, 10]);
}
