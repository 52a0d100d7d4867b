//! GlobalAveragePool: dX = Expand(dY / (H·W), X.shape).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let x = n.input[0].as_str();
    if !cx.needs(x) {
        return Ok(vec![None]);
    }
    let xs = cx.shape(n, x)?;
    let area: i64 = xs[2..].iter().product();
    let inv = cx.scalar(1.0 / area as f32);
    let s = cx.mul(dy, &inv);
    let shape = cx.ints(&xs);
    Ok(vec![Some(cx.op("Expand", "gap_dx", &[&s, &shape], vec![]))])
}
