//! LeakyRelu: dX = Where(X > 0, dY, α·dY).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let alpha = n.get_f("alpha")?.unwrap_or(0.01);
    let (z, a) = (cx.scalar(0.0), cx.scalar(alpha));
    let pos = cx.op("Greater", "lrelu_pos", &[&n.input[0], &z], vec![]);
    let neg = cx.mul(dy, &a);
    Ok(vec![Some(cx.op("Where", "lrelu_dx", &[&pos, dy, &neg], vec![]))])
}
