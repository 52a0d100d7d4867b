//! CIFAR-style ResNets (He et al. 2016, §4.2): a 3×3 stem with 16 channels, three stages of n basic blocks at
//! 16/32/64 channels, stride 2 at the first block of stages 2 and 3, global average pooling and a linear head.
//! Depth = 6n + 2 (20 → n = 3, 56 → n = 9).
//!
//! Down-sampling blocks use a projection shortcut (1×1 conv stride 2 + BN, named `layerK.0.downsample.{0,1}` as
//! in torchvision) instead of the paper's parameter-free option A, so every block is a plain ONNX graph. It adds
//! 16·32 + 2·32 + 32·64 + 2·64 = 2,752 parameters: ResNet-20 has 269,722 + 2,752 = 272,474 with 10 classes.

use converters::proto::ModelProto;

use crate::config::ModelConfig;
use crate::error::{Result, bad_config};
use crate::net::{ConvShape, INPUT, LOGITS, Net};

pub fn resnet20(cfg: &ModelConfig) -> Result<ModelProto> {
    resnet_cifar(20, cfg)
}

pub fn resnet56(cfg: &ModelConfig) -> Result<ModelProto> {
    resnet_cifar(56, cfg)
}

/// A CIFAR ResNet of `depth` = 6n + 2 layers, BatchNormalization kept (train-ready). Fold it with
/// [`crate::fold_bn`] for deployment.
pub fn resnet_cifar(depth: usize, cfg: &ModelConfig) -> Result<ModelProto> {
    let name = format!("resnet{depth}");
    cfg.check(&name)?;
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(bad_config(
            &name,
            format!("depth must be 6n+2 with n >= 1, got {depth}"),
        ));
    }
    let blocks = (depth - 2) / 6;
    let mut net = Net::new(&name, cfg);
    let widths = [16, 32, 64].map(|c| cfg.scaled(c));

    let x = net.conv("conv1", INPUT, ConvShape::new(cfg.in_channels, widths[0], 3));
    let x = net.bn("bn1", &x, widths[0]);
    let mut x = net.relu("relu", &x);
    let mut cin = widths[0];
    for (stage, &cout) in widths.iter().enumerate() {
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            x = basic_block(&mut net, &format!("layer{}.{block}", stage + 1), &x, cin, cout, stride);
            cin = cout;
        }
    }
    let x = net.global_avg_pool("avgpool", &x);
    let x = net.flatten("flatten", &x);
    net.linear("fc", &x, cin, cfg.num_classes, Some(LOGITS));
    Ok(net.finish_classifier(cfg.num_classes))
}

/// conv3×3-BN-ReLU-conv3×3-BN, + shortcut, ReLU. Two ReLU slots: `relu1` fed by `conv1`, `relu2` fed by `conv2`
/// and (through the Add) by the shortcut's conv when there is one.
fn basic_block(net: &mut Net, p: &str, x: &str, cin: i64, cout: i64, stride: i64) -> String {
    let h = net.conv(&format!("{p}.conv1"), x, ConvShape::new(cin, cout, 3).stride(stride));
    let h = net.bn(&format!("{p}.bn1"), &h, cout);
    let h = net.relu(&format!("{p}.relu1"), &h);
    let h = net.conv(&format!("{p}.conv2"), &h, ConvShape::new(cout, cout, 3));
    let h = net.bn(&format!("{p}.bn2"), &h, cout);
    let shortcut = if stride != 1 || cin != cout {
        let s = net.conv(
            &format!("{p}.downsample.0"),
            x,
            ConvShape::new(cin, cout, 1).stride(stride).pad(0),
        );
        net.bn(&format!("{p}.downsample.1"), &s, cout)
    } else {
        x.to_string()
    };
    let h = net.add(&format!("{p}.add"), &h, &shortcut);
    net.relu(&format!("{p}.relu2"), &h)
}
