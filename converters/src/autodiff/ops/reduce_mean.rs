//! ReduceMean (axes as attribute before opset 18, as input from 18): dX = Expand(dY / count, X.shape), with
//! dY reshaped to keep the reduced axes first when keepdims=0.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::ops::reduce::reduced_axes;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let x = n.input[0].as_str();
    if !cx.needs(x) {
        return Ok(out);
    }
    let xs = cx.shape(n, x)?;
    let (ax, _) = reduced_axes(n, &cx.infos(n), xs.len())?;
    let kept: Vec<i64> = xs
        .iter()
        .enumerate()
        .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
        .collect();
    let count: i64 = ax.iter().map(|&i| xs[i]).product();
    let r = cx.reshape(dy, &kept);
    let inv = cx.scalar(1.0 / count as f32);
    let s = cx.mul(&r, &inv);
    let shape = cx.ints(&xs);
    out[0] = Some(cx.op("Expand", "rmean_dx", &[&s, &shape], vec![]));
    Ok(out)
}
