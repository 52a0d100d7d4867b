//! Normalizations. Only BatchNormalization trains (batch statistics in the train step, or frozen); the others
//! are known to shape inference and slot detection.

use crate::autodiff::StateKind;
use crate::autodiff::ops::batch_norm;
use crate::ir::attr::NodeExt;
use crate::ops::common::{input_info, same_as_first};
use crate::ops::error::{Result, shape_err, unsupported};
use crate::ops::spec::{Affine, DataInputs, OpSpec, Walk, no_macs};
use crate::proto::NodeProto;
use crate::shapes::ValInfo;

pub const SPECS: &[OpSpec] = &[
    // Inference-mode BN is affine (its statistics are constants).
    OpSpec::new("BatchNormalization", infer_batch_norm, Affine::Yes)
        .grad(batch_norm::GRAD)
        .forward_train(batch_norm::FORWARD)
        .params(&[1, 2])
        .state(&[(3, StateKind::RunningMean), (4, StateKind::RunningVar)])
        .walk(Walk::Through(DataInputs::First))
        .macs(no_macs),
    OpSpec::new("InstanceNormalization", same_as_first, Affine::No).walk(Walk::Through(DataInputs::First)),
    OpSpec::new("GroupNormalization", same_as_first, Affine::No).walk(Walk::Through(DataInputs::First)),
    OpSpec::new("LRN", same_as_first, Affine::No),
    OpSpec::new("LpNormalization", same_as_first, Affine::No),
];

fn infer_batch_norm(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    if n.output.iter().filter(|o| !o.is_empty()).count() > 1 || n.get_i("training_mode")?.unwrap_or(0) != 0 {
        return Err(unsupported(n, "a training-mode BatchNormalization in the source model"));
    }
    if x.shape.len() < 2 {
        return Err(shape_err(n, "input needs a channel axis"));
    }
    Ok(vec![ValInfo::float(x.shape.clone())])
}
