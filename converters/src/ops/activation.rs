//! Activations. Relu is what the converter removes; ReLU6 (Clip 0..6), LeakyRelu and PRelu are opt-in kinds;
//! the smooth ones are known to shape inference, and those torchvision exports (Sigmoid in SE gates and SiLU,
//! HardSigmoid/HardSwish in MobileNet-V3) train.

use crate::act::ActKind;
use crate::autodiff::ops::{clip, hard_sigmoid, hard_swish, leaky_relu, prelu, relu, sigmoid};
use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ir::tensor;
use crate::ops::common::same_as_first;
use crate::ops::spec::{Act, Affine, OpSpec, no_macs};
use crate::proto::{GraphProto, NodeProto};

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("Relu", same_as_first, Affine::Gated)
        .grad(relu::GRAD)
        .act(Act::Always(ActKind::Relu)),
    OpSpec::new("LeakyRelu", same_as_first, Affine::Gated)
        .grad(leaky_relu::GRAD)
        .act(Act::Always(ActKind::LeakyRelu)),
    OpSpec::new("PRelu", same_as_first, Affine::No)
        .grad(prelu::GRAD)
        .params(&[1])
        .act(Act::Always(ActKind::PRelu))
        .macs(no_macs),
    OpSpec::new("Clip", same_as_first, Affine::No)
        .grad(clip::GRAD)
        .act(Act::When(ActKind::Relu6, is_relu6)),
    OpSpec::new("Sigmoid", same_as_first, Affine::No).grad(sigmoid::GRAD),
    OpSpec::new("HardSigmoid", same_as_first, Affine::No).grad(hard_sigmoid::GRAD),
    OpSpec::new("HardSwish", same_as_first, Affine::No).grad(hard_swish::GRAD),
    OpSpec::new("Tanh", same_as_first, Affine::No),
    OpSpec::new("Elu", same_as_first, Affine::No),
    OpSpec::new("Selu", same_as_first, Affine::No),
    OpSpec::new("Celu", same_as_first, Affine::No),
    OpSpec::new("Gelu", same_as_first, Affine::No),
    OpSpec::new("Softplus", same_as_first, Affine::No),
    OpSpec::new("Softsign", same_as_first, Affine::No),
    OpSpec::new("Softmax", same_as_first, Affine::No),
    OpSpec::new("LogSoftmax", same_as_first, Affine::No),
];

/// Clip is ReLU6 only with constant bounds 0 and 6.
fn is_relu6(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> bool {
    clip_bounds(g, ix, n) == Some((0.0, 6.0))
}

/// Clip's (min, max): attributes before opset 11, optional constant inputs after.
fn clip_bounds(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> Option<(f32, f32)> {
    let scalar = |idx: usize| -> Option<Option<f32>> {
        match n.input.get(idx).filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(v) => {
                let t = ix.constant(g, v)?;
                let vals = tensor::to_f32(t, None).ok()?;
                (vals.len() == 1).then(|| Some(vals[0]))
            }
        }
    };
    let lo = match n.get_f("min").ok()? {
        Some(v) => Some(v),
        None => scalar(1)?,
    };
    let hi = match n.get_f("max").ok()? {
        Some(v) => Some(v),
        None => scalar(2)?,
    };
    Some((lo.unwrap_or(f32::MIN), hi.unwrap_or(f32::MAX)))
}
