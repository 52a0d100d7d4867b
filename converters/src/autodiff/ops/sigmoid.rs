//! Sigmoid: dX = dY·Y·(1 − Y), reusing the forward output.

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
    let y = out0(n).to_string();
    let one = cx.scalar(1.0);
    let omy = cx.op("Sub", "sig_1my", &[&one, &y], vec![]);
    let d = cx.mul(&y, &omy);
    Ok(vec![Some(cx.mul(dy, &d))])
}
