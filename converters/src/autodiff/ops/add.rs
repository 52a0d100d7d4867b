//! Add: both operands get dY, summed over the axes they were broadcast along.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::{broadcast_all, out0};
use crate::autodiff::registry::{Grad, Rule};
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Add",
    infer: broadcast_all,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[0, 1],
};

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None, None]);
    };
    let ys = cx.shape(n, out0(n))?;
    let mut out = vec![None, None];
    for (slot, inp) in out.iter_mut().zip(&n.input) {
        if cx.needs(inp) {
            let s = cx.shape(n, inp)?;
            *slot = Some(cx.reduce_to(dy, &ys, &s));
        }
    }
    Ok(out)
}
