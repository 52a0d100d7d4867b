//! Cast between float types: dX = Cast(dY, to = X's type). Casts to integers end every gradient path (their
//! outputs are not float, so nothing asks for them).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::registry::Grad;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = cx.first_input_dy(n, dys) else {
        return Ok(vec![None]);
    };
    let from = cx
        .info
        .get(&n.input[0])
        .map(|i| i.elem)
        .ok_or_else(|| shape_err(n, "input type unknown"))?;
    Ok(vec![Some(cx.op(
        "Cast",
        "cast_dx",
        &[dy],
        vec![("to", Attr::Int(from as i64))],
    ))])
}
