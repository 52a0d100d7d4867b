//! Relu: dX = Where(Y > 0, dY, 0) (PyTorch's convention: zero gradient at 0).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let z = cx.scalar(0.0);
    let pos = cx.op("Greater", "relu_pos", &[out0(n), &z], vec![]);
    Ok(vec![Some(cx.mask(&pos, dy))])
}
