//! Div: dA = dY/B; dB = −dY·Y/B (reusing Y = A/B), each summed over its broadcast axes.

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
    let y = out0(n).to_string();
    let ys = cx.shape(n, &y)?;
    let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
    let mut out = vec![None, None];
    let da = if cx.needs(a) || cx.needs(b) {
        Some(cx.op("Div", "div_da", &[dy, b], vec![]))
    } else {
        None
    };
    if cx.needs(a) {
        let s = cx.shape(n, a)?;
        out[0] = Some(cx.reduce_to(da.as_deref().unwrap_or(dy), &ys, &s));
    }
    if cx.needs(b)
        && let Some(da) = da
    {
        let s = cx.shape(n, b)?;
        let p = cx.mul(&da, &y);
        let neg = cx.neg(&p);
        out[1] = Some(cx.reduce_to(&neg, &ys, &s));
    }
    Ok(out)
}
