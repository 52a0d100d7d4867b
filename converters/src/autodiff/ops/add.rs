//! Add, and its variadic form Sum: every operand gets dY, summed over the axes it was broadcast along.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let ys = cx.shape(n, out0(n))?;
    for (slot, inp) in out.iter_mut().zip(&n.input) {
        if cx.needs(inp) {
            let s = cx.shape(n, inp)?;
            *slot = Some(cx.reduce_to(dy, &ys, &s));
        }
    }
    Ok(out)
}
