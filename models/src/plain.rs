//! A small plain CNN: k × (Conv3×3 [-BN] - ReLU - MaxPool2×2), Flatten, Gemm - ReLU - Gemm. Sized for 8×8 sklearn
//! digits (2 stages: 8 → 4 → 2) and 28×28 MNIST (3 stages: 28 → 14 → 7 → 3, like shared/models/mnist_cnn.onnx).

use converters::proto::ModelProto;

use crate::config::{ModelConfig, out_size};
use crate::error::{Result, bad_config};
use crate::net::{ConvShape, INPUT, LOGITS, Net};

#[derive(Debug, Clone, PartialEq)]
pub struct PlainConfig {
    pub base: ModelConfig,
    /// Output channels of each conv stage, before the width multiplier.
    pub channels: Vec<i64>,
    pub batch_norm: bool,
    /// Width of the hidden fully-connected layer, before the width multiplier.
    pub hidden: i64,
}

impl PlainConfig {
    /// 2 stages of 16/32 channels with BN and a 64-wide hidden layer: 3 ReLU slots (two conv, one fc).
    pub fn new(base: ModelConfig) -> Self {
        PlainConfig {
            base,
            channels: vec![16, 32],
            batch_norm: true,
            hidden: 64,
        }
    }

    /// The layout of shared/models/mnist_cnn.onnx: 32/64/128 channels, no BN, 256 hidden (for 28×28 inputs).
    pub fn mnist(base: ModelConfig) -> Self {
        PlainConfig {
            base,
            channels: vec![32, 64, 128],
            batch_norm: false,
            hidden: 256,
        }
    }
}

pub fn plain_cnn(cfg: &PlainConfig) -> Result<ModelProto> {
    let base = &cfg.base;
    base.check("plain")?;
    if cfg.channels.is_empty() || cfg.channels.iter().any(|&c| c < 1) {
        return Err(bad_config(
            "plain",
            format!("channels must be non-empty counts >= 1, got {:?}", cfg.channels),
        ));
    }
    if cfg.hidden < 1 {
        return Err(bad_config("plain", format!("hidden must be >= 1, got {}", cfg.hidden)));
    }
    let mut net = Net::new("plain", base);
    let mut x = INPUT.to_string();
    let (mut c, mut size) = (base.in_channels, base.input_size);
    for (i, &out) in cfg.channels.iter().enumerate() {
        if size < 2 {
            return Err(bad_config(
                "plain",
                format!(
                    "{} pooling stages need an input of at least 2^{} pixels, got {}",
                    cfg.channels.len(),
                    cfg.channels.len(),
                    base.input_size
                ),
            ));
        }
        let out = base.scaled(out);
        let p = format!("features.{i}");
        x = net.conv(
            &format!("{p}.conv"),
            &x,
            ConvShape::new(c, out, 3).bias(!cfg.batch_norm),
        );
        if cfg.batch_norm {
            x = net.bn(&format!("{p}.bn"), &x, out);
        }
        x = net.relu(&format!("{p}.relu"), &x);
        x = net.max_pool(&format!("{p}.pool"), &x, 2, 2, 0);
        c = out;
        size = out_size(size, 2, 2, 0);
    }
    let x = net.flatten("flatten", &x);
    let hidden = base.scaled(cfg.hidden);
    let x = net.linear("fc1", &x, c * size * size, hidden, None);
    let x = net.relu("relu_fc1", &x);
    net.linear("fc2", &x, hidden, base.num_classes, Some(LOGITS));
    Ok(net.finish_classifier(base.num_classes))
}
