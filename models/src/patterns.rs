//! Small architecture-pattern fixtures (1–3 blocks each) shaped like `torch.onnx.export` output, for the
//! converter's tests. Each doc comment states what a converter should find: the Relu slots (activation nodes
//! and the convolutions that feed them, walking back through BN, Add, Concat, Identity) and the traps.
//!
//! Fixtures use fixed seeds and random BN statistics, so they are deterministic and BN is never an identity.
//! Unless stated otherwise the input is `input` and the single output `output`.

use converters::ir::build::{self, Attr};
use converters::proto::attribute_proto::AttributeType;
use converters::proto::tensor_proto::DataType;
use converters::proto::{AttributeProto, GraphProto, ModelProto};

use crate::config::ModelConfig;
use crate::init;
use crate::net::{ConvShape, INPUT, LOGITS, Net, f32_tensor};

/// A fixture builder.
pub type Fixture = fn() -> ModelProto;

/// Every fixture by name, for tests that sweep them all.
pub fn all() -> Vec<(&'static str, Fixture)> {
    vec![
        ("resnext_block", resnext_block),
        ("mobilenet_v2_inverted_residual", mobilenet_v2_inverted_residual),
        ("squeezenet_fire", squeezenet_fire),
        ("inception_block", inception_block),
        ("shufflenet_channel_shuffle", shufflenet_channel_shuffle),
        ("preact_resnet_block", preact_resnet_block),
        ("legacy_flatten", legacy_flatten),
        ("constant_and_identity_weights", constant_and_identity_weights),
        ("silu_net", silu_net),
        ("leaky_relu_net", leaky_relu_net),
        ("prelu_net", prelu_net),
        ("if_reads_outer_relu", if_reads_outer_relu),
        ("relu_feeds_graph_output", relu_feeds_graph_output),
    ]
}

/// The fixture called `name` (one of [`all`]'s names).
pub fn by_name(name: &str) -> Option<ModelProto> {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, build)| build())
}

/// Name of the single output of most fixtures.
pub const OUTPUT: &str = "output";

fn net(name: &str, channels: i64, size: i64, seed: u64) -> Net {
    let cfg = ModelConfig::new(channels, size, 10)
        .with_seed(seed)
        .with_random_bn_stats(true);
    Net::new(name, &cfg)
}

fn finish(mut net: Net, dims: &[Option<i64>]) -> ModelProto {
    net.output(OUTPUT, dims);
    net.finish()
}

fn conv_bn(net: &mut Net, p: &str, x: &str, c: ConvShape) -> String {
    let h = net.conv(&format!("{p}.conv"), x, c);
    net.bn(&format!("{p}.bn"), &h, c.cout)
}

/// ResNeXt bottleneck (cardinality 8 × width 4) on [N, 64, 8, 8] with an identity shortcut.
///
/// Expect 3 Relu slots: `relu1` ← `conv1` (1×1), `relu2` ← `conv2` (3×3, `group` = 8), `relu3` ← `conv3` through
/// `bn3` and the residual `add` (the other Add operand is the block input, no conv). 3 convs, 3 BN.
pub fn resnext_block() -> ModelProto {
    let mut net = net("resnext_block", 64, 8, 101);
    let h = net.conv("conv1", INPUT, ConvShape::new(64, 32, 1));
    let h = net.bn("bn1", &h, 32);
    let h = net.relu("relu1", &h);
    let h = net.conv("conv2", &h, ConvShape::new(32, 32, 3).groups(8));
    let h = net.bn("bn2", &h, 32);
    let h = net.relu("relu2", &h);
    let h = net.conv("conv3", &h, ConvShape::new(32, 64, 1));
    let h = net.bn("bn3", &h, 64);
    let h = net.add("add", &h, INPUT);
    net.node_to("Relu", "relu3", &[&h], &[OUTPUT], vec![]);
    finish(net, &[None, Some(64), Some(8), Some(8)])
}

/// MobileNet-V2 stem + one inverted residual (expand 6×, depthwise, linear projection, residual add) on
/// [N, 3, 16, 16]. ReLU6 is exported as `Clip(x, min, max)` with min = 0 and max = 6 as scalar initializers.
///
/// Expect 0 Relu and 3 Clip(0,6) slots (opt-in ReLU6): `features.0.2` ← `features.0.0` (stem conv),
/// `features.1.conv.0.2` ← `features.1.conv.0.0` (1×1 expand), `features.1.conv.1.2` ← `features.1.conv.1.0`
/// (3×3 depthwise, `group` = 96). The projection `features.1.conv.2` feeds the residual `features.1.add` and no
/// activation: it is linear by design.
pub fn mobilenet_v2_inverted_residual() -> ModelProto {
    let mut net = net("mobilenet_v2_inverted_residual", 3, 16, 102);
    let h = net.conv("features.0.0", INPUT, ConvShape::new(3, 16, 3));
    let h = net.bn("features.0.1", &h, 16);
    let stem = net.relu6("features.0.2", &h);
    let h = net.conv("features.1.conv.0.0", &stem, ConvShape::new(16, 96, 1));
    let h = net.bn("features.1.conv.0.1", &h, 96);
    let h = net.relu6("features.1.conv.0.2", &h);
    let h = net.conv("features.1.conv.1.0", &h, ConvShape::new(96, 96, 3).groups(96));
    let h = net.bn("features.1.conv.1.1", &h, 96);
    let h = net.relu6("features.1.conv.1.2", &h);
    let h = net.conv("features.1.conv.2", &h, ConvShape::new(96, 16, 1));
    let h = net.bn("features.1.conv.3", &h, 16);
    net.node_to("Add", "features.1.add", &[&h, &stem], &[OUTPUT], vec![]);
    finish(net, &[None, Some(16), Some(16), Some(16)])
}

/// SqueezeNet stem + one Fire module on [N, 3, 16, 16] (convs with bias, no BN, as in torchvision).
///
/// Expect 4 Relu slots: `features.1` ← `features.0` (stem), `features.3.squeeze_activation` ←
/// `features.3.squeeze`, `features.3.expand1x1_activation` ← `features.3.expand1x1`,
/// `features.3.expand3x3_activation` ← `features.3.expand3x3`; the two expand branches join in a Concat
/// (the output, 32 channels) after their ReLUs.
pub fn squeezenet_fire() -> ModelProto {
    let mut net = net("squeezenet_fire", 3, 16, 103);
    let h = net.conv(
        "features.0",
        INPUT,
        ConvShape::new(3, 32, 3).stride(2).pad(1).bias(true),
    );
    let h = net.relu("features.1", &h);
    let h = net.max_pool("features.2", &h, 3, 2, 1);
    let s = net.conv("features.3.squeeze", &h, ConvShape::new(32, 8, 1).bias(true));
    let s = net.relu("features.3.squeeze_activation", &s);
    let e1 = net.conv("features.3.expand1x1", &s, ConvShape::new(8, 16, 1).bias(true));
    let e1 = net.relu("features.3.expand1x1_activation", &e1);
    let e3 = net.conv("features.3.expand3x3", &s, ConvShape::new(8, 16, 3).bias(true));
    let e3 = net.relu("features.3.expand3x3_activation", &e3);
    net.node_to(
        "Concat",
        "features.3.concat",
        &[&e1, &e3],
        &[OUTPUT],
        vec![("axis", Attr::Int(1))],
    );
    finish(net, &[None, Some(32), Some(4), Some(4)])
}

/// GoogLeNet Inception module on [N, 32, 8, 8], torchvision's `BasicConv2d` (conv without bias, BN, ReLU):
/// branch1 1×1→16; branch2 1×1→16, 3×3→24; branch3 1×1→8, 3×3→12; branch4 MaxPool 3×3/1 then 1×1→12; Concat.
///
/// Expect 6 Relu slots, each fed by exactly one conv through its BN: `branchK[.i].relu` ← `branchK[.i].conv`.
/// The output Concat (64 channels) joins four ReLU outputs, so no conv feeds the concat directly.
pub fn inception_block() -> ModelProto {
    let mut net = net("inception_block", 32, 8, 104);
    let basic = |net: &mut Net, p: &str, x: &str, cin, cout, k| {
        let h = conv_bn(net, p, x, ConvShape::new(cin, cout, k));
        net.relu(&format!("{p}.relu"), &h)
    };
    let b1 = basic(&mut net, "branch1", INPUT, 32, 16, 1);
    let b2 = basic(&mut net, "branch2.0", INPUT, 32, 16, 1);
    let b2 = basic(&mut net, "branch2.1", &b2, 16, 24, 3);
    let b3 = basic(&mut net, "branch3.0", INPUT, 32, 8, 1);
    let b3 = basic(&mut net, "branch3.1", &b3, 8, 12, 3);
    let b4 = net.max_pool("branch4.0", INPUT, 3, 1, 1);
    let b4 = basic(&mut net, "branch4.1", &b4, 32, 12, 1);
    net.node_to(
        "Concat",
        "concat",
        &[&b1, &b2, &b3, &b4],
        &[OUTPUT],
        vec![("axis", Attr::Int(1))],
    );
    finish(net, &[None, Some(64), Some(8), Some(8)])
}

/// ShuffleNet-V2 stride-1 unit on [N, 24, 8, 8]: Split into two halves, branch2 = 1×1-BN-ReLU, 3×3 depthwise-BN
/// (no ReLU), 1×1-BN-ReLU, Concat with the untouched half, then channel shuffle as Reshape `[-1,2,12,8,8]` →
/// Transpose `[0,2,1,3,4]` → Reshape `[-1,24,8,8]` (shape constants as int64 initializers).
///
/// Expect 2 Relu slots: `branch2.2` ← `branch2.0`, `branch2.7` ← `branch2.5`. The depthwise `branch2.3` feeds
/// no activation directly (it reaches `branch2.7` only through the 1×1 conv `branch2.5`).
pub fn shufflenet_channel_shuffle() -> ModelProto {
    let mut net = net("shufflenet_channel_shuffle", 24, 8, 105);
    let split = net.param_i64("split.sizes", &[2], &[12, 12]);
    let (x1, x2) = ("split.0", "split.1");
    net.node_to(
        "Split",
        "split",
        &[INPUT, &split],
        &[x1, x2],
        vec![("axis", Attr::Int(1))],
    );
    let h = net.conv("branch2.0", x2, ConvShape::new(12, 12, 1));
    let h = net.bn("branch2.1", &h, 12);
    let h = net.relu("branch2.2", &h);
    let h = net.conv("branch2.3", &h, ConvShape::new(12, 12, 3).groups(12));
    let h = net.bn("branch2.4", &h, 12);
    let h = net.conv("branch2.5", &h, ConvShape::new(12, 12, 1));
    let h = net.bn("branch2.6", &h, 12);
    let h = net.relu("branch2.7", &h);
    let h = net.concat("concat", &[x1, &h]);
    let s1 = net.param_i64("shuffle.shape1", &[5], &[-1, 2, 12, 8, 8]);
    let h = net.node("Reshape", "shuffle.reshape1", &[&h, &s1], vec![]);
    let h = net.node(
        "Transpose",
        "shuffle.transpose",
        &[&h],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3, 4]))],
    );
    let s2 = net.param_i64("shuffle.shape2", &[4], &[-1, 24, 8, 8]);
    net.node_to("Reshape", "shuffle.reshape2", &[&h, &s2], &[OUTPUT], vec![]);
    finish(net, &[None, Some(24), Some(8), Some(8)])
}

/// Pre-activation ResNet (He et al. 2016b) on [N, 3, 8, 8]: stem `conv1`, an identity block `layer1.0`
/// (BN-ReLU-Conv ×2, + input) and a down-sampling block `layer1.1` (16→32, stride 2) whose 1×1 `shortcut` conv
/// reads the block's first ReLU output, then the final `bn`-`relu`, global pooling and `fc`.
///
/// Expect 5 Relu slots, each reached through a BN: `layer1.0.relu1` ← `conv1`; `layer1.0.relu2` ←
/// `layer1.0.conv1`; `layer1.1.relu1` ← `layer1.0.add` ← {`layer1.0.conv2`, `conv1`}; `layer1.1.relu2` ←
/// `layer1.1.conv1`; `relu` ← `layer1.1.add` ← {`layer1.1.conv2`, `layer1.1.shortcut`}. Output `logits` [N, 10].
pub fn preact_resnet_block() -> ModelProto {
    let mut net = net("preact_resnet_block", 3, 8, 106);
    let stem = net.conv("conv1", INPUT, ConvShape::new(3, 16, 3));
    // Identity block.
    let h = net.bn("layer1.0.bn1", &stem, 16);
    let h = net.relu("layer1.0.relu1", &h);
    let h = net.conv("layer1.0.conv1", &h, ConvShape::new(16, 16, 3));
    let h = net.bn("layer1.0.bn2", &h, 16);
    let h = net.relu("layer1.0.relu2", &h);
    let h = net.conv("layer1.0.conv2", &h, ConvShape::new(16, 16, 3));
    let x = net.add("layer1.0.add", &h, &stem);
    // Down-sampling block: the shortcut reads the pre-activated input, as in the paper's code.
    let h = net.bn("layer1.1.bn1", &x, 16);
    let a = net.relu("layer1.1.relu1", &h);
    let sc = net.conv("layer1.1.shortcut", &a, ConvShape::new(16, 32, 1).stride(2).pad(0));
    let h = net.conv("layer1.1.conv1", &a, ConvShape::new(16, 32, 3).stride(2));
    let h = net.bn("layer1.1.bn2", &h, 32);
    let h = net.relu("layer1.1.relu2", &h);
    let h = net.conv("layer1.1.conv2", &h, ConvShape::new(32, 32, 3));
    let x = net.add("layer1.1.add", &h, &sc);
    let h = net.bn("bn", &x, 32);
    let h = net.relu("relu", &h);
    let h = net.global_avg_pool("avgpool", &h);
    let h = net.flatten("flatten", &h);
    net.linear("fc", &h, 32, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// A classifier on [N, 1, 8, 8] flattened the way legacy torch exports `x.view(x.size(0), -1)`:
/// Shape → Gather(0) → `Unsqueeze(axes=[0])` → Concat with `[-1]` → Reshape, then fc1-Relu-fc2.
///
/// Expect 2 Relu slots: `relu` ← `conv` (3×3 with bias, no BN) and `fc_relu` ← `fc1` (a Gemm, no conv). The
/// Shape/Gather chain is int64 bookkeeping that must not be mistaken for a producer. Output `logits` [N, 10].
pub fn legacy_flatten() -> ModelProto {
    let mut net = net("legacy_flatten", 1, 8, 107);
    let h = net.conv("conv", INPUT, ConvShape::new(1, 8, 3).bias(true));
    let h = net.relu("relu", &h);
    let h = net.max_pool("pool", &h, 2, 2, 0);
    let shape = net.node("Shape", "flatten.shape", &[&h], vec![]);
    let zero = net.param_i64("flatten.index", &[], &[0]);
    let batch = net.node(
        "Gather",
        "flatten.gather",
        &[&shape, &zero],
        vec![("axis", Attr::Int(0))],
    );
    let axes = net.param_i64("flatten.axes", &[1], &[0]);
    let batch = net.node("Unsqueeze", "flatten.unsqueeze", &[&batch, &axes], vec![]);
    let rest = net.param_i64("flatten.rest", &[1], &[-1]);
    let target = net.node(
        "Concat",
        "flatten.concat",
        &[&batch, &rest],
        vec![("axis", Attr::Int(0))],
    );
    let h = net.node("Reshape", "flatten.reshape", &[&h, &target], vec![]);
    let h = net.linear("fc1", &h, 8 * 4 * 4, 32, None);
    let h = net.relu("fc_relu", &h);
    net.linear("fc2", &h, 32, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// Two conv layers on [N, 3, 8, 8] whose weights are not plain initializers: `conv1` reads weight and bias
/// from `Constant` nodes (`conv1.weight.const`, `conv1.bias.const`); `conv2` reads its weight initializer through
/// an `Identity` node (`conv2.weight.identity`), as torch emits for shared parameters.
///
/// Expect 2 Relu slots: `relu1` ← `conv1`, `relu2` ← `conv2` (through `bn2`). A converter must resolve both
/// weights as constants (for folding or shape checks).
pub fn constant_and_identity_weights() -> ModelProto {
    let mut net = net("constant_and_identity_weights", 3, 8, 108);
    let w1 = init::kaiming_normal_fan_out(net.rng(), &[8, 3, 3, 3]);
    let b1 = init::torch_default_uniform(net.rng(), 8, 27);
    let w1 = constant(&mut net, "conv1.weight.const", &[8, 3, 3, 3], &w1);
    let b1 = constant(&mut net, "conv1.bias.const", &[8], &b1);
    let conv_attrs = || {
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ("strides", Attr::Ints(vec![1, 1])),
        ]
    };
    let h = net.node("Conv", "conv1", &[INPUT, &w1, &b1], conv_attrs());
    let h = net.relu("relu1", &h);
    let w2 = init::kaiming_normal_fan_out(net.rng(), &[8, 8, 3, 3]);
    let w2 = net.param("conv2.weight", &[8, 8, 3, 3], &w2);
    let w2 = net.node("Identity", "conv2.weight.identity", &[&w2], vec![]);
    let h = net.node("Conv", "conv2", &[&h, &w2], conv_attrs());
    let h = net.bn("bn2", &h, 8);
    net.node_to("Relu", "relu2", &[&h], &[OUTPUT], vec![]);
    finish(net, &[None, Some(8), Some(8), Some(8)])
}

fn constant(net: &mut Net, name: &str, dims: &[i64], values: &[f32]) -> String {
    let t = f32_tensor(name, dims, values);
    net.node("Constant", name, &[], vec![("value", Attr::Tensor(t))])
}

/// Conv-BN-SiLU ×2, exported as `x * Sigmoid(x)` (Sigmoid + Mul), then a linear head, on [N, 3, 8, 8].
///
/// Expect 0 Relu slots and 0 other activation slots: nothing to convert, the model must come out unchanged.
/// Output `logits` [N, 10].
pub fn silu_net() -> ModelProto {
    let mut net = net("silu_net", 3, 8, 109);
    let mut x = INPUT.to_string();
    let mut cin = 3;
    for i in 1..=2 {
        let h = conv_bn(&mut net, &format!("block{i}"), &x, ConvShape::new(cin, 16, 3));
        let s = net.node("Sigmoid", &format!("block{i}.sigmoid"), &[&h], vec![]);
        x = net.node("Mul", &format!("block{i}.silu"), &[&h, &s], vec![]);
        cin = 16;
    }
    head(net, &x, 16)
}

/// Conv-BN-LeakyRelu(α = 0.1) ×2 and a linear head on [N, 3, 8, 8].
///
/// Expect 0 Relu and 2 LeakyRelu slots (opt-in): `block1.act` ← `block1.conv`, `block2.act` ← `block2.conv`.
/// Output `logits` [N, 10].
pub fn leaky_relu_net() -> ModelProto {
    let mut net = net("leaky_relu_net", 3, 8, 110);
    let mut x = INPUT.to_string();
    let mut cin = 3;
    for i in 1..=2 {
        let h = conv_bn(&mut net, &format!("block{i}"), &x, ConvShape::new(cin, 16, 3));
        x = net.node(
            "LeakyRelu",
            &format!("block{i}.act"),
            &[&h],
            vec![("alpha", Attr::Float(0.1))],
        );
        cin = 16;
    }
    head(net, &x, 16)
}

/// Conv-BN-PRelu ×2 (per-channel slope initializers [16, 1, 1], torch's 0.25) and a linear head on [N, 3, 8, 8].
///
/// Expect 0 Relu and 2 PRelu slots (opt-in): `block1.act` ← `block1.conv`, `block2.act` ← `block2.conv`.
/// Output `logits` [N, 10].
pub fn prelu_net() -> ModelProto {
    let mut net = net("prelu_net", 3, 8, 111);
    let mut x = INPUT.to_string();
    let mut cin = 3;
    for i in 1..=2 {
        let h = conv_bn(&mut net, &format!("block{i}"), &x, ConvShape::new(cin, 16, 3));
        let slope = net.param(&format!("block{i}.act.weight"), &[16, 1, 1], &[0.25; 16]);
        x = net.node("PRelu", &format!("block{i}.act"), &[&h, &slope], vec![]);
        cin = 16;
    }
    head(net, &x, 16)
}

fn head(mut net: Net, x: &str, c: i64) -> ModelProto {
    let h = net.global_avg_pool("avgpool", x);
    let h = net.flatten("flatten", &h);
    net.linear("fc", &h, c, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// A data-dependent `If` on [N, 3, 8, 8]: `relu1` ← `conv1`; `cond` = ReduceMean(relu1) > 0.5; the then-branch
/// returns `relu1 * 2`, the else-branch `Identity(relu1)` — both read `relu1` from the enclosing scope, not as a
/// node input of the If. `conv2` reads the If's output, then `relu2`.
///
/// Expect 2 Relu slots: `relu1` ← `conv1`, `relu2` ← `conv2`. Removing `relu1` must rewire the references inside
/// both branches too.
pub fn if_reads_outer_relu() -> ModelProto {
    let mut net = net("if_reads_outer_relu", 3, 8, 112);
    let h = net.conv("conv1", INPUT, ConvShape::new(3, 8, 3).bias(true));
    let r = net.relu("relu1", &h);
    let mean = net.node("ReduceMean", "cond.mean", &[&r], vec![("keepdims", Attr::Int(0))]);
    let half = net.param("cond.threshold", &[], &[0.5]);
    let cond = net.node("Greater", "cond", &[&mean, &half], vec![]);
    let dims = [None, Some(8), Some(8), Some(8)];

    let mut then_g = GraphProto {
        name: Some("then_branch".into()),
        ..Default::default()
    };
    then_g.initializer.push(f32_tensor("then.two", &[], &[2.0]));
    then_g.node.push(build::node(
        "Mul",
        "then.double",
        &[&r, "then.two"],
        &["then.out"],
        vec![],
    ));
    then_g
        .output
        .push(build::value_info("then.out", DataType::Float, &dims));
    let mut else_g = GraphProto {
        name: Some("else_branch".into()),
        ..Default::default()
    };
    else_g
        .node
        .push(build::node("Identity", "else.identity", &[&r], &["else.out"], vec![]));
    else_g
        .output
        .push(build::value_info("else.out", DataType::Float, &dims));

    let name = net.fresh("if");
    let mut node = build::node("If", &name, &[&cond], &[&name], vec![]);
    node.attribute.push(graph_attr("then_branch", then_g));
    node.attribute.push(graph_attr("else_branch", else_g));
    net.push_node(node);
    let h = net.conv("conv2", &name, ConvShape::new(8, 8, 3).bias(true));
    net.node_to("Relu", "relu2", &[&h], &[OUTPUT], vec![]);
    finish(net, &dims)
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(g),
        ..Default::default()
    }
}

/// On [N, 3, 8, 8]: `block1.conv`-`block1.bn`-`relu1`, whose output is the graph output `features` [N, 16, 8, 8] *and* feeds
/// `conv2`-`bn2`-`relu2`, global pooling and `fc` (`logits` [N, 10]). Two graph outputs.
///
/// Expect 2 Relu slots: `relu1` ← `block1.conv`, `relu2` ← `conv2`. Removing `relu1` must keep a graph output named
/// `features` (through an Identity), because runtimes bind outputs by name.
pub fn relu_feeds_graph_output() -> ModelProto {
    let mut net = net("relu_feeds_graph_output", 3, 8, 113);
    let h = conv_bn(&mut net, "block1", INPUT, ConvShape::new(3, 16, 3));
    let features = "features";
    net.node_to("Relu", "relu1", &[&h], &[features], vec![]);
    net.output(features, &[None, Some(16), Some(8), Some(8)]);
    let h = net.conv("conv2", features, ConvShape::new(16, 16, 3));
    let h = net.bn("bn2", &h, 16);
    let h = net.relu("relu2", &h);
    head(net, &h, 16)
}
