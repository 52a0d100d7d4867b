//! Identity: dX = dY. Integer identities keep their folded values.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Identity",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    Ok(vec![input_info(n, ins, 0)?.clone()])
}

fn grad(_cx: &mut GradCx, _n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    Ok(vec![dys[0].clone()])
}
