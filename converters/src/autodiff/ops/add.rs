//! Add: both operands get dY, summed over the axes they were broadcast along.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

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
