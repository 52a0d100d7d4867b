//! Flatten: dX = Reshape(dY, X.shape).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    if !cx.needs(&n.input[0]) {
        return Ok(vec![None]);
    }
    let xs = cx.shape(n, &n.input[0])?;
    Ok(vec![Some(cx.reshape(dy, &xs))])
}
