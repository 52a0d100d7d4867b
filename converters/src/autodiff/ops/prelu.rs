//! PRelu: dX = Where(X > 0, dY, slope·dY); dslope = Σ over broadcast axes of Where(X > 0, 0, X)·dY.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None, None]);
    };
    let (x, slope) = (n.input[0].as_str(), n.input[1].as_str());
    let z = cx.scalar(0.0);
    let pos = cx.op("Greater", "prelu_pos", &[x, &z], vec![]);
    let mut out = vec![None, None];
    if cx.needs(x) {
        let neg = cx.mul(dy, slope);
        out[0] = Some(cx.op("Where", "prelu_dx", &[&pos, dy, &neg], vec![]));
    }
    if cx.needs(slope) {
        let xneg = cx.op("Where", "prelu_xneg", &[&pos, &z, x], vec![]);
        let p = cx.mul(&xneg, dy);
        let (xs, ss) = (cx.shape(n, x)?, cx.shape(n, slope)?);
        out[1] = Some(cx.reduce_to(&p, &xs, &ss));
    }
    Ok(out)
}
