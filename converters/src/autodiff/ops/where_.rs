//! Where(C, A, B): dA = Where(C, dY, 0), dB = Where(C, 0, dY), each summed over its broadcast axes; the
//! condition carries no gradient.

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
    let (c, a, b) = (n.input[0].as_str(), n.input[1].as_str(), n.input[2].as_str());
    let z = cx.scalar(0.0);
    if cx.needs(a) {
        let s = cx.shape(n, a)?;
        let g = cx.op("Where", "where_da", &[c, dy, &z], vec![]);
        out[1] = Some(cx.reduce_to(&g, &ys, &s));
    }
    if cx.needs(b) {
        let s = cx.shape(n, b)?;
        let g = cx.op("Where", "where_db", &[c, &z, dy], vec![]);
        out[2] = Some(cx.reduce_to(&g, &ys, &s));
    }
    Ok(out)
}
