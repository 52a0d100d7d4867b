//! A ResNet-50-shaped network (torchvision `resnet50`, v1.5: stride on the 3×3 conv of a bottleneck) for the
//! converter's speed bench: 7×7/2 stem + 3×3/2 max pool, stages of 3/4/6/3 bottlenecks at 64/128/256/512 planes
//! (×4 expansion), projection shortcuts where shape changes, global average pooling, linear head. With width 1 and
//! 1000 classes it has torchvision's 25,557,032 parameters (~102 MB of f32) and 49 ReLU nodes (stem + 3 per
//! block). Weights are random (seeded): it is for measuring graph tooling, not for accuracy.

use converters::proto::ModelProto;

use crate::config::ModelConfig;
use crate::error::Result;
use crate::net::{ConvShape, INPUT, LOGITS, Net};

/// Bottleneck blocks per stage.
pub const RESNET50_BLOCKS: [usize; 4] = [3, 4, 6, 3];
const EXPANSION: i64 = 4;

/// `cfg.width` scales every width; `cfg` default input is 32×32, pass 224 for the ImageNet shape.
pub fn resnet50_like(cfg: &ModelConfig) -> Result<ModelProto> {
    cfg.check("resnet50")?;
    let mut net = Net::new("resnet50", cfg);
    let stem = cfg.scaled(64);
    let x = net.conv(
        "conv1",
        INPUT,
        ConvShape::new(cfg.in_channels, stem, 7).stride(2).pad(3),
    );
    let x = net.bn("bn1", &x, stem);
    let x = net.relu("relu", &x);
    let mut x = net.max_pool("maxpool", &x, 3, 2, 1);
    let mut cin = stem;
    for (stage, &blocks) in RESNET50_BLOCKS.iter().enumerate() {
        let planes = cfg.scaled(64 << stage);
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            x = bottleneck(
                &mut net,
                &format!("layer{}.{block}", stage + 1),
                &x,
                cin,
                planes,
                stride,
            );
            cin = planes * EXPANSION;
        }
    }
    let x = net.global_avg_pool("avgpool", &x);
    let x = net.flatten("flatten", &x);
    net.linear("fc", &x, cin, cfg.num_classes, Some(LOGITS));
    Ok(net.finish_classifier(cfg.num_classes))
}

/// 1×1 reduce - 3×3 (strided) - 1×1 expand, each with BN; ReLU after the first two and after the residual Add.
fn bottleneck(net: &mut Net, p: &str, x: &str, cin: i64, planes: i64, stride: i64) -> String {
    let cout = planes * EXPANSION;
    let h = net.conv(&format!("{p}.conv1"), x, ConvShape::new(cin, planes, 1));
    let h = net.bn(&format!("{p}.bn1"), &h, planes);
    let h = net.relu(&format!("{p}.relu1"), &h);
    let h = net.conv(
        &format!("{p}.conv2"),
        &h,
        ConvShape::new(planes, planes, 3).stride(stride),
    );
    let h = net.bn(&format!("{p}.bn2"), &h, planes);
    let h = net.relu(&format!("{p}.relu2"), &h);
    let h = net.conv(&format!("{p}.conv3"), &h, ConvShape::new(planes, cout, 1));
    let h = net.bn(&format!("{p}.bn3"), &h, cout);
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
    net.relu(&format!("{p}.relu3"), &h)
}
