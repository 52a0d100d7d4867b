//! Sub: dA = dY, dB = −dY, each summed over its broadcast axes.

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
    if cx.needs(&n.input[0]) {
        let s = cx.shape(n, &n.input[0])?;
        out[0] = Some(cx.reduce_to(dy, &ys, &s));
    }
    if cx.needs(&n.input[1]) {
        let s = cx.shape(n, &n.input[1])?;
        let neg = cx.neg(dy);
        out[1] = Some(cx.reduce_to(&neg, &ys, &s));
    }
    Ok(out)
}
