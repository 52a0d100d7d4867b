//! VGG-style plain chain: 3×3 Conv(-BN)-ReLU layers with 2×2 MaxPool between stages, then GlobalAveragePool,
//! Flatten and one Gemm. Nodes are numbered `features.<i>` like torchvision's `nn.Sequential` export (conv,
//! bn, relu and pool each take an index), the head is `avgpool`, `flatten`, `classifier`.

use std::fmt;
use std::str::FromStr;

use converters::proto::ModelProto;

use crate::config::ModelConfig;
use crate::error::{ModelsError, Result, bad_config};
use crate::net::{ConvShape, INPUT, LOGITS, Net};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggLayer {
    /// A 3×3 conv with this many output channels (before the width multiplier).
    Conv(i64),
    /// 2×2 max pooling, stride 2.
    Pool,
}

/// The layer list of [`VggConfig`], written like torchvision's cfgs: `"64,M,128,M,256,256,M"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VggLayers(pub Vec<VggLayer>);

impl FromStr for VggLayers {
    type Err = ModelsError;

    fn from_str(s: &str) -> Result<Self> {
        let layers = s
            .split(',')
            .map(str::trim)
            .map(|item| match item {
                "M" | "m" => Ok(VggLayer::Pool),
                n => match n.parse::<i64>() {
                    Ok(c) if c > 0 => Ok(VggLayer::Conv(c)),
                    _ => Err(bad_config(
                        "vgg",
                        format!("layer list '{s}': '{item}' is neither a positive channel count nor M"),
                    )),
                },
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(VggLayers(layers))
    }
}

impl fmt::Display for VggLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|l| match l {
                VggLayer::Conv(c) => c.to_string(),
                VggLayer::Pool => "M".into(),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VggConfig {
    pub base: ModelConfig,
    pub layers: VggLayers,
    pub batch_norm: bool,
}

impl VggConfig {
    /// The default chain `64,M,128,M,256,256,M` with BN: 4 convs, 4 ReLU slots, 3 stages.
    pub fn new(base: ModelConfig) -> Self {
        VggConfig {
            base,
            layers: VggLayers(vec![
                VggLayer::Conv(64),
                VggLayer::Pool,
                VggLayer::Conv(128),
                VggLayer::Pool,
                VggLayer::Conv(256),
                VggLayer::Conv(256),
                VggLayer::Pool,
            ]),
            batch_norm: true,
        }
    }
}

pub fn vgg(cfg: &VggConfig) -> Result<ModelProto> {
    let base = &cfg.base;
    base.check("vgg")?;
    if !cfg.layers.0.iter().any(|l| matches!(l, VggLayer::Conv(_))) {
        return Err(bad_config(
            "vgg",
            format!("layer list '{}' has no conv layer", cfg.layers),
        ));
    }
    let mut net = Net::new("vgg", base);
    net.meta("ratio.model.layers", cfg.layers.to_string());
    let mut x = INPUT.to_string();
    let (mut c, mut size, mut i) = (base.in_channels, base.input_size, 0usize);
    let mut next = || {
        i += 1;
        format!("features.{}", i - 1)
    };
    for layer in &cfg.layers.0 {
        match *layer {
            VggLayer::Conv(out) => {
                let out = base.scaled(out);
                x = net.conv(&next(), &x, ConvShape::new(c, out, 3).bias(!cfg.batch_norm));
                if cfg.batch_norm {
                    x = net.bn(&next(), &x, out);
                }
                x = net.relu(&next(), &x);
                c = out;
            }
            VggLayer::Pool => {
                if size < 2 {
                    return Err(bad_config(
                        "vgg",
                        format!(
                            "layer list '{}' pools a {size}×{size} map: input size {} is too small",
                            cfg.layers, base.input_size
                        ),
                    ));
                }
                x = net.max_pool(&next(), &x, 2, 2, 0);
                size /= 2;
            }
        }
    }
    let x = net.global_avg_pool("avgpool", &x);
    let x = net.flatten("flatten", &x);
    net.linear("classifier", &x, c, base.num_classes, Some(LOGITS));
    Ok(net.finish_classifier(base.num_classes))
}
