//! Neg: dX = −dY.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, _n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    Ok(vec![dys[0].as_deref().map(|dy| cx.neg(dy))])
}
