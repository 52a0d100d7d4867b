//! Mul: dA = dY·B, dB = dY·A, each summed over its broadcast axes.

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
    for (i, other) in [(0, 1), (1, 0)] {
        if cx.needs(&n.input[i]) {
            let s = cx.shape(n, &n.input[i])?;
            let p = cx.mul(dy, &n.input[other]);
            out[i] = Some(cx.reduce_to(&p, &ys, &s));
        }
    }
    Ok(out)
}
