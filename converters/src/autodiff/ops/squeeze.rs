//! Squeeze and Unsqueeze only relabel axes: dX = Reshape(dY, X.shape).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    if let Some(dy) = cx.first_input_dy(n, dys) {
        let xs = cx.shape(n, &n.input[0])?;
        out[0] = Some(cx.reshape(dy, &xs));
    }
    Ok(out)
}
