//! DenseNet-BC for small images (Huang et al. 2017): a 3×3 stem of 2k channels, dense blocks whose layers are
//! pre-activation bottlenecks BN-ReLU-Conv1×1(4k)-BN-ReLU-Conv3×3(k) whose output is concatenated to the
//! running feature map, and transitions BN-ReLU-Conv1×1(θ·c)-AvgPool2×2 between blocks; BN-ReLU, global
//! average pooling and a linear head at the end. Names follow torchvision's `densenet` export
//! (`features.denseblock1.denselayer1.conv1`, `features.transition1.pool`, `features.norm5`).

use converters::proto::ModelProto;

use crate::config::ModelConfig;
use crate::error::{Result, bad_config};
use crate::net::{ConvShape, INPUT, LOGITS, Net};

#[derive(Debug, Clone, PartialEq)]
pub struct DenseNetConfig {
    pub base: ModelConfig,
    /// Channels each dense layer adds (k), before the width multiplier.
    pub growth: i64,
    /// Dense layers per block.
    pub block_layers: Vec<usize>,
    /// Transition compression θ (0.5 for the "-C" of BC).
    pub compression: f32,
}

impl DenseNetConfig {
    /// DenseNet-BC-40 (k = 12, 3 blocks of 6 layers): 40 = 3·6·2 bottleneck convs + stem + 2 transitions + fc.
    pub fn new(base: ModelConfig) -> Self {
        DenseNetConfig {
            base,
            growth: 12,
            block_layers: vec![6, 6, 6],
            compression: 0.5,
        }
    }
}

pub fn densenet_bc(cfg: &DenseNetConfig) -> Result<ModelProto> {
    let base = &cfg.base;
    base.check("densenet")?;
    if cfg.block_layers.is_empty() || cfg.block_layers.contains(&0) {
        return Err(bad_config(
            "densenet",
            format!("block_layers must be non-empty counts >= 1, got {:?}", cfg.block_layers),
        ));
    }
    if !(cfg.compression > 0.0 && cfg.compression <= 1.0) {
        return Err(bad_config(
            "densenet",
            format!("compression must be in (0, 1], got {}", cfg.compression),
        ));
    }
    let transitions = cfg.block_layers.len() - 1;
    if base.input_size.checked_shr(transitions as u32).unwrap_or(0) < 1 {
        return Err(bad_config(
            "densenet",
            format!(
                "{transitions} transitions halve the input {transitions} times; input size {} is too small",
                base.input_size
            ),
        ));
    }
    let k = base.scaled(cfg.growth);
    let mut net = Net::new("densenet", base);
    let mut c = 2 * k;
    let mut x = net.conv("features.conv0", INPUT, ConvShape::new(base.in_channels, c, 3));
    for (b, &layers) in cfg.block_layers.iter().enumerate() {
        let block = format!("features.denseblock{}", b + 1);
        for l in 0..layers {
            let p = format!("{block}.denselayer{}", l + 1);
            let h = net.bn(&format!("{p}.norm1"), &x, c);
            let h = net.relu(&format!("{p}.relu1"), &h);
            let h = net.conv(&format!("{p}.conv1"), &h, ConvShape::new(c, 4 * k, 1));
            let h = net.bn(&format!("{p}.norm2"), &h, 4 * k);
            let h = net.relu(&format!("{p}.relu2"), &h);
            let h = net.conv(&format!("{p}.conv2"), &h, ConvShape::new(4 * k, k, 3));
            x = net.concat(&format!("{p}.concat"), &[&x, &h]);
            c += k;
        }
        if b + 1 < cfg.block_layers.len() {
            let p = format!("features.transition{}", b + 1);
            let out = ((c as f64 * cfg.compression as f64).floor() as i64).max(1);
            let h = net.bn(&format!("{p}.norm"), &x, c);
            let h = net.relu(&format!("{p}.relu"), &h);
            let h = net.conv(&format!("{p}.conv"), &h, ConvShape::new(c, out, 1));
            x = net.avg_pool(&format!("{p}.pool"), &h, 2, 2);
            c = out;
        }
    }
    let x = net.bn("features.norm5", &x, c);
    let x = net.relu("features.relu5", &x);
    let x = net.global_avg_pool("avgpool", &x);
    let x = net.flatten("flatten", &x);
    net.linear("classifier", &x, c, base.num_classes, Some(LOGITS));
    Ok(net.finish_classifier(base.num_classes))
}
