//! Export-idiom fixtures: toy-size networks written the way `torch.onnx.export` writes torchvision models
//! (`/work/shared/notes/export-idioms.md`, measured on torch 2.15 / torchvision 0.29), so fine-tuning can be
//! tested on every form a user brings without torch. Each doc comment names the idiom, what fine-tuning must do
//! with it, and the exporter mode it mimics. All are IR ≤ 10, opset ≤ 21, with the image input `input`
//! [N, 3, S, S] and `logits` [N, 10], seeded and deterministic.

use converters::ir::build::Attr;
use converters::proto::ModelProto;

use crate::config::ModelConfig;
use crate::net::{ConvShape, INPUT, LOGITS, Net};

/// A fixture builder.
pub type Fixture = fn() -> ModelProto;

/// Every idiom fixture by name.
pub fn all() -> Vec<(&'static str, Fixture)> {
    vec![
        ("dynamo_static_flatten", dynamo_static_flatten),
        ("shufflenet_shape_shuffle", shufflenet_shape_shuffle),
        ("dedup_bn_identity", dedup_bn_identity),
        ("mobilenet_v3_hard", mobilenet_v3_hard),
        ("ceil_mode_pools", ceil_mode_pools),
        ("bn_folded", bn_folded),
    ]
}

/// The fixture called `name` (one of [`all`]'s names).
pub fn by_name(name: &str) -> Option<ModelProto> {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, build)| build())
}

/// The batch [`dynamo_static_flatten`] is exported at.
pub const STATIC_BATCH: i64 = 2;

fn net(name: &str, size: i64, seed: u64) -> Net {
    let cfg = ModelConfig::new(3, size, 10).with_seed(seed).with_random_bn_stats(true);
    Net::new(name, &cfg)
}

fn conv_bn_relu(net: &mut Net, p: &str, x: &str, c: ConvShape) -> String {
    let h = net.conv(&format!("{p}.conv"), x, c);
    let h = net.bn(&format!("{p}.bn"), &h, c.cout);
    net.relu(&format!("{p}.relu"), &h)
}

fn with_versions(mut m: ModelProto, ir: i64, opset: i64) -> ModelProto {
    m.ir_version = Some(ir);
    for o in &mut m.opset_import {
        o.version = Some(opset);
    }
    m
}

/// `torch.onnx.export(dynamo=True)` without `dynamic_shapes`: IR 10, opset 18, input fixed at [2, 3, 8, 8], node
/// names `node_*`, global pooling as `ReduceMean(x, axes=[2, 3], keepdims=1)` with the axes as an input, and
/// flatten as `node_view` = `Reshape` to the constant [2, 8]. A static channel shuffle with 2 groups reshapes
/// to [2, 2, 4, 8, 8]: there the first 2 is the batch and the second the group count. A learned scale `scale`
/// [16] is reshaped to the constant [2, 8] and averaged over its first axis: that 2 is not the batch either.
///
/// Training at batch B must rewrite exactly three targets — `node_view_shuffle` to [B, 2, 4, 8, 8],
/// `node_view_unshuffle` to [B, 8, 8, 8], `node_view` to [B, 8] — and leave `node_view_scale` alone.
pub fn dynamo_static_flatten() -> ModelProto {
    let mut net = net("dynamo_static_flatten", 8, 201);
    net.fix_batch(STATIC_BATCH);
    let h = net.conv("node_conv2d", INPUT, ConvShape::new(3, 8, 3));
    let h = net.bn("node_batch_norm", &h, 8);
    let h = net.relu("node_relu", &h);
    let groups = net.param_i64("val_shuffle", &[5], &[STATIC_BATCH, 2, 4, 8, 8]);
    let h = net.node("Reshape", "node_view_shuffle", &[&h, &groups], vec![]);
    let h = net.node(
        "Transpose",
        "node_transpose",
        &[&h],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3, 4]))],
    );
    let back = net.param_i64("val_unshuffle", &[4], &[STATIC_BATCH, 8, 8, 8]);
    let h = net.node("Reshape", "node_view_unshuffle", &[&h, &back], vec![]);
    let h = net.conv("node_conv2d_1", &h, ConvShape::new(8, 8, 3).stride(2));
    let h = net.bn("node_batch_norm_1", &h, 8);
    let h = net.relu("node_relu_1", &h);
    let axes = net.param_i64("val_axes", &[2], &[2, 3]);
    let h = net.node(
        "ReduceMean",
        "node_mean",
        &[&h, &axes],
        vec![("keepdims", Attr::Int(1))],
    );
    let flat = net.param_i64("val_flat", &[2], &[STATIC_BATCH, 8]);
    let h = net.node("Reshape", "node_view", &[&h, &flat], vec![]);
    net.value_info(&h, &[Some(STATIC_BATCH), Some(8)]);
    let scale = net.param("scale", &[16], &[1.0; 16]);
    let pair = net.param_i64("val_pair", &[2], &[2, 8]);
    let s = net.node("Reshape", "node_view_scale", &[&scale, &pair], vec![]);
    let first = net.param_i64("val_axis0", &[1], &[0]);
    let s = net.node(
        "ReduceMean",
        "node_mean_scale",
        &[&s, &first],
        vec![("keepdims", Attr::Int(0))],
    );
    let h = net.node("Mul", "node_mul", &[&h, &s], vec![]);
    net.linear("node_linear", &h, 8, 10, Some(LOGITS));
    net.output(LOGITS, &[Some(STATIC_BATCH), Some(10)]);
    with_versions(net.finish(), 10, 18)
}

/// The legacy exporter's ShuffleNet-V2 unit with a dynamic batch (IR 8, opset 17): the channel split and the
/// shuffle are shape arithmetic. `x.chunk(2, 1)` is two Slices whose bounds are `(C + 1) / 2` computed from
/// `Shape → Gather → Add → Div → Mul → Unsqueeze`; the shuffle's first Reshape target is `Concat(N, 2, C / 2
/// through two Casts, H, W)` of scalar Gathers of Shape, the second `Concat(N, C, H, W)`. Then the unit's
/// `Concat(x1, branch2(x2))` (a join of two computed tensors, not shape arithmetic), ReduceMean over [2, 3] and
/// the classifier.
///
/// Every target must fold to a constant at the training batch (a second shape inference in autodiff used to
/// stop at "target shape is not a build-time constant").
pub fn shufflenet_shape_shuffle() -> ModelProto {
    let mut net = net("shufflenet_shape_shuffle", 8, 202);
    let x = conv_bn_relu(&mut net, "conv1", INPUT, ConvShape::new(3, 8, 3));
    let scalar = |net: &mut Net, name: &str, v: i64| net.param_i64(name, &[], &[v]);
    let zero_axis = net.param_i64("axes0", &[1], &[0]);
    let dim = |net: &mut Net, p: &str, v: &str, i: i64| {
        let shape = net.node("Shape", &format!("{p}.shape{i}"), &[v], vec![]);
        let idx = net.param_i64(&format!("{p}.index{i}"), &[], &[i]);
        net.node(
            "Gather",
            &format!("{p}.gather{i}"),
            &[&shape, &idx],
            vec![("axis", Attr::Int(0))],
        )
    };
    let unsqueeze = |net: &mut Net, name: &str, v: &str, axes: &str| net.node("Unsqueeze", name, &[v, axes], vec![]);
    // Split: x1 = x[:, :s], x2 = x[:, s:2s] with s = (C + 1) / 2.
    let c = dim(&mut net, "split", &x, 1);
    let one = scalar(&mut net, "split.one", 1);
    let two = scalar(&mut net, "split.two", 2);
    let cp = net.node("Add", "split.add", &[&c, &one], vec![]);
    let s = net.node("Div", "split.div", &[&cp, &two], vec![]);
    let e1 = net.node("Mul", "split.mul1", &[&s, &one], vec![]);
    let e2 = net.node("Mul", "split.mul2", &[&s, &two], vec![]);
    let (e1, e2) = (
        unsqueeze(&mut net, "split.end1", &e1, &zero_axis),
        unsqueeze(&mut net, "split.end2", &e2, &zero_axis),
    );
    let start = net.param_i64("split.start", &[1], &[0]);
    let axis1 = net.param_i64("split.axis", &[1], &[1]);
    let x1 = net.node("Slice", "split.slice1", &[&x, &start, &e1, &axis1], vec![]);
    let x2 = net.node("Slice", "split.slice2", &[&x, &e1, &e2, &axis1], vec![]);
    let h = conv_bn_relu(&mut net, "branch2.0", &x2, ConvShape::new(4, 4, 1));
    let h = net.conv("branch2.3", &h, ConvShape::new(4, 4, 3).groups(4));
    let h = net.bn("branch2.4", &h, 4);
    let h = conv_bn_relu(&mut net, "branch2.5", &h, ConvShape::new(4, 4, 1));
    let cat = net.concat("concat", &[&x1, &h]);
    // Channel shuffle with 2 groups, every dim read back from Shape.
    let dims: Vec<String> = (0..4).map(|i| dim(&mut net, "shuffle", &cat, i)).collect();
    let groups = net.param_i64("shuffle.groups", &[1], &[2]);
    let per = net.node("Div", "shuffle.div", &[&dims[1], &two], vec![]);
    let per = net.node("Cast", "shuffle.cast", &[&per], vec![("to", Attr::Int(7))]);
    let per = net.node("Cast", "shuffle.cast_1", &[&per], vec![("to", Attr::Int(7))]);
    let u: Vec<String> = [&dims[0], &per, &dims[2], &dims[3]]
        .iter()
        .enumerate()
        .map(|(i, v)| unsqueeze(&mut net, &format!("shuffle.unsqueeze{i}"), v, &zero_axis))
        .collect();
    let t1 = net.node(
        "Concat",
        "shuffle.target1",
        &[&u[0], &groups, &u[1], &u[2], &u[3]],
        vec![("axis", Attr::Int(0))],
    );
    let h = net.node("Reshape", "shuffle.reshape1", &[&cat, &t1], vec![]);
    let h = net.node(
        "Transpose",
        "shuffle.transpose",
        &[&h],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3, 4]))],
    );
    let c_all = unsqueeze(&mut net, "shuffle.unsqueeze_c", &dims[1], &zero_axis);
    let t2 = net.node(
        "Concat",
        "shuffle.target2",
        &[&u[0], &c_all, &u[2], &u[3]],
        vec![("axis", Attr::Int(0))],
    );
    let h = net.node("Reshape", "shuffle.reshape2", &[&h, &t2], vec![]);
    let h = net.node(
        "ReduceMean",
        "mean",
        &[&h],
        vec![("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(0))],
    );
    net.linear("fc", &h, 8, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// The legacy exporter with `training=PRESERVE` (IR 8, opset 17) on a freshly initialised net: BatchNorm stays
/// (`training_mode=0`, momentum 0.9) and every tensor with the same contents is one initializer, the others
/// `Identity` nodes named as PyTorch named them. Here all BN scales are one `bn1.weight`, biases one
/// `bn1.bias`, running means one `bn1.running_mean` and variances one `bn1.running_var`; `layer1.0.bn1.*`,
/// `layer1.0.bn2.*` read Identity copies. Conv1 → BN → Relu, a basic residual block, global pooling, Flatten
/// and the classifier.
///
/// Training-mode BN must give each of the 3 BNs its own running statistics (PyTorch had 3), and each BN its own
/// scale and bias; writing back must produce 3 distinct sets.
pub fn dedup_bn_identity() -> ModelProto {
    let mut net = net("dedup_bn_identity", 8, 203);
    let c = 8;
    let shared = [
        ("weight", vec![1.0f32; c as usize]),
        ("bias", vec![0.0; c as usize]),
        ("running_mean", vec![0.0; c as usize]),
        ("running_var", vec![1.0; c as usize]),
    ];
    let sources: Vec<String> = shared
        .iter()
        .map(|(field, v)| net.param(&format!("bn1.{field}"), &[c], v))
        .collect();
    let bn = |net: &mut Net, p: &str, x: &str, first: bool| {
        let ins: Vec<String> = shared
            .iter()
            .zip(&sources)
            .map(|((field, _), src)| {
                if first {
                    src.clone()
                } else {
                    net.node("Identity", &format!("{p}.{field}"), &[src], vec![])
                }
            })
            .collect();
        let refs: Vec<&str> = std::iter::once(x).chain(ins.iter().map(String::as_str)).collect();
        net.node(
            "BatchNormalization",
            p,
            &refs,
            vec![
                ("epsilon", Attr::Float(1e-5)),
                ("momentum", Attr::Float(0.9)),
                ("training_mode", Attr::Int(0)),
            ],
        )
    };
    let h = net.conv("conv1", INPUT, ConvShape::new(3, c, 3));
    let h = bn(&mut net, "bn1", &h, true);
    let stem = net.relu("relu", &h);
    let h = net.conv("layer1.0.conv1", &stem, ConvShape::new(c, c, 3));
    let h = bn(&mut net, "layer1.0.bn1", &h, false);
    let h = net.relu("layer1.0.relu", &h);
    let h = net.conv("layer1.0.conv2", &h, ConvShape::new(c, c, 3));
    let h = bn(&mut net, "layer1.0.bn2", &h, false);
    let h = net.add("layer1.0.add", &h, &stem);
    let h = net.relu("layer1.0.relu_1", &h);
    let h = net.global_avg_pool("avgpool", &h);
    let h = net.flatten("flatten", &h);
    net.linear("fc", &h, c, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// MobileNet-V3 as the legacy exporter writes it with BN folded (IR 8, opset 17): a Conv(bias)–HardSwish stem,
/// a depthwise Conv–Relu, a squeeze-excite gate GlobalAveragePool → Conv → Relu → Conv → `HardSigmoid(α = 1/6,
/// β = 0.5)` → Mul, a 1×1 projection, a Conv–HardSwish, then global pooling, Flatten, Linear → HardSwish →
/// Dropout → Linear.
///
/// HardSwish and HardSigmoid must train (they had no gradient rule).
pub fn mobilenet_v3_hard() -> ModelProto {
    let mut net = net("mobilenet_v3_hard", 8, 204);
    let hswish = |net: &mut Net, name: &str, x: &str| net.node("HardSwish", name, &[x], vec![]);
    let h = net.conv("features.0.0", INPUT, ConvShape::new(3, 8, 3).stride(2).bias(true));
    let h = hswish(&mut net, "features.0.2", &h);
    let h = net.conv("features.1.block.0.0", &h, ConvShape::new(8, 8, 3).groups(8).bias(true));
    let h = net.relu("features.1.block.0.2", &h);
    let s = net.global_avg_pool("features.1.block.1.avgpool", &h);
    let s = net.conv("features.1.block.1.fc1", &s, ConvShape::new(8, 4, 1).bias(true));
    let s = net.relu("features.1.block.1.relu", &s);
    let s = net.conv("features.1.block.1.fc2", &s, ConvShape::new(4, 8, 1).bias(true));
    let s = net.node(
        "HardSigmoid",
        "features.1.block.1.scale_activation",
        &[&s],
        vec![("alpha", Attr::Float(1.0 / 6.0)), ("beta", Attr::Float(0.5))],
    );
    let h = net.node("Mul", "features.1.block.1.mul", &[&s, &h], vec![]);
    let h = net.conv("features.1.block.2.0", &h, ConvShape::new(8, 8, 1).bias(true));
    let h = net.conv("features.2.0", &h, ConvShape::new(8, 16, 1).bias(true));
    let h = hswish(&mut net, "features.2.2", &h);
    let h = net.global_avg_pool("avgpool", &h);
    let h = net.flatten("flatten", &h);
    let h = net.linear("classifier.0", &h, 16, 16, None);
    let h = hswish(&mut net, "classifier.1", &h);
    let h = net.node("Dropout", "classifier.2", &[&h], vec![]);
    net.linear("classifier.3", &h, 16, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// GoogLeNet/Inception pooling as the legacy exporter writes it (IR 8, opset 17) on [N, 3, 10, 10]: Conv–BN–Relu,
/// `MaxPool(3, stride 2, ceil_mode=1)` (10 → 5, the last window hangs off the edge), a 1×1 Conv–BN–Relu,
/// Inception's `AveragePool(3, stride 1, pad 1, count_include_pad=1)`, and `AveragePool(2, stride 2,
/// ceil_mode=1, count_include_pad=1)` (5 → 3, the last window covers one column), then global pooling and the
/// classifier.
///
/// Both ceil_mode pools must train, with the forward's divisors.
pub fn ceil_mode_pools() -> ModelProto {
    let mut net = net("ceil_mode_pools", 10, 205);
    let h = conv_bn_relu(&mut net, "conv1", INPUT, ConvShape::new(3, 8, 3));
    let pool = |k: i64, s: i64, p: i64, ceil: i64, include_pad: Option<i64>| {
        let mut a = vec![
            ("ceil_mode", Attr::Int(ceil)),
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("pads", Attr::Ints(vec![p, p, p, p])),
            ("strides", Attr::Ints(vec![s, s])),
        ];
        if let Some(c) = include_pad {
            a.push(("count_include_pad", Attr::Int(c)));
        }
        a
    };
    let h = net.node("MaxPool", "maxpool1", &[&h], pool(3, 2, 0, 1, None));
    let h = conv_bn_relu(&mut net, "conv2", &h, ConvShape::new(8, 8, 1));
    let h = net.node("AveragePool", "branch_pool", &[&h], pool(3, 1, 1, 0, Some(1)));
    let h = net.node("AveragePool", "transition_pool", &[&h], pool(2, 2, 0, 1, Some(1)));
    let h = net.global_avg_pool("avgpool", &h);
    let h = net.flatten("flatten", &h);
    net.linear("fc", &h, 8, 10, Some(LOGITS));
    net.finish_classifier(10)
}

/// The legacy exporter's default (`training=EVAL`, constant folding on; IR 8, opset 17): BatchNorm folded into
/// the convolutions, which gain biases; node names as that exporter writes them. A stem Conv–Relu, a basic
/// residual block (Conv–Relu–Conv, Add, Relu), global pooling, Flatten and `fc`.
///
/// Nothing renormalizes: there is no BN to put in training mode.
pub fn bn_folded() -> ModelProto {
    let mut net = net("bn_folded", 8, 206);
    let conv = |net: &mut Net, name: &str, x: &str, c: ConvShape| net.conv(name, x, c.bias(true));
    let stem = conv(&mut net, "/conv1/Conv", INPUT, ConvShape::new(3, 8, 3));
    let stem = net.relu("/relu/Relu", &stem);
    let h = conv(&mut net, "/layer1/layer1.0/conv1/Conv", &stem, ConvShape::new(8, 8, 3));
    let h = net.relu("/layer1/layer1.0/relu/Relu", &h);
    let h = conv(&mut net, "/layer1/layer1.0/conv2/Conv", &h, ConvShape::new(8, 8, 3));
    let h = net.add("/layer1/layer1.0/Add", &h, &stem);
    let h = net.relu("/layer1/layer1.0/relu_1/Relu", &h);
    let h = net.global_avg_pool("/avgpool/GlobalAveragePool", &h);
    let h = net.flatten("/Flatten", &h);
    net.linear("fc", &h, 8, 10, Some(LOGITS));
    net.finish_classifier(10)
}
