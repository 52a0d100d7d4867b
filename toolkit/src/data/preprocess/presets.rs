//! Built-in presets. Normalisation constants are the ones the models in ../shared were trained with.

use super::{ChannelOrder, DType, Filter, Layout, Pipeline, Preset, Resize, ResizeTo};

pub const NAMES: [&str; 7] = [
    "mnist",
    "fashion-mnist",
    "digits",
    "cifar10",
    "cifar100",
    "imagenet-torchvision",
    "imagenet-tf",
];

fn plain(name: &str, scale: f32, mean: Vec<f32>, std: Vec<f32>) -> Preset {
    Preset {
        name: name.into(),
        pipeline: Pipeline {
            grayscale: false,
            resize: None,
            crop: None,
            scale,
            mean,
            std,
            channel_order: ChannelOrder::Rgb,
            layout: Layout::Nchw,
            dtype: DType::F32,
        },
    }
}

fn imagenet(name: &str, mean: Vec<f32>, std: Vec<f32>, scale: f32) -> Preset {
    let mut p = plain(name, scale, mean, std);
    p.pipeline.resize = Some(Resize {
        to: ResizeTo::Shorter(256),
        filter: Filter::Bilinear,
    });
    p.pipeline.crop = Some([224, 224]);
    p
}

pub fn builtin(name: &str) -> Option<Preset> {
    Some(match name {
        "mnist" => plain(name, 1.0 / 255.0, vec![0.1307], vec![0.3081]),
        "fashion-mnist" => plain(name, 1.0 / 255.0, vec![0.2860], vec![0.3530]),
        "digits" => plain(name, 1.0 / 16.0, vec![0.0], vec![1.0]),
        // Per-channel statistics of the CIFAR training sets.
        "cifar10" => plain(
            name,
            1.0 / 255.0,
            vec![0.4914, 0.4822, 0.4465],
            vec![0.2470, 0.2435, 0.2616],
        ),
        "cifar100" => plain(
            name,
            1.0 / 255.0,
            vec![0.5071, 0.4865, 0.4409],
            vec![0.2673, 0.2564, 0.2762],
        ),
        "imagenet-torchvision" => imagenet(name, vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225], 1.0 / 255.0),
        "imagenet-tf" => imagenet(name, vec![127.0], vec![128.0], 1.0),
        _ => return None,
    })
}
