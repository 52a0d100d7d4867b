//! Relu: dX = dY · (Y > 0) (PyTorch's convention: zero gradient at 0).
//!
//! The mask is a Cast of the comparison and a Mul, not `Where(Y > 0, dY, 0)`: on ORT's CPU provider Where costs
//! about 14 ms on a [128, 16, 32, 32] tensor against about 5 ms for Greater + Cast + Mul (measured with the
//! profiler). The two differ only where dY is not finite, where the step is rejected anyway.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::{mask_by_mul, out0};
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let z = cx.scalar(0.0);
    let pos = cx.op("Greater", "relu_pos", &[out0(n), &z], vec![]);
    Ok(vec![Some(mask_by_mul(cx, &pos, dy))])
}
