//! Concat: dY is split back into the inputs' extents along the axis. Integer Concats (shape arithmetic in
//! exported graphs) are folded at build time and carry no gradient.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::norm_axis;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None; n.input.len()]);
    };
    let ys = cx.shape(n, out0(n))?;
    let axis = n.get_i("axis")?.unwrap_or(0);
    let ax = norm_axis(axis, ys.len()).ok_or_else(|| shape_err(n, "axis out of range"))?;
    let mut sizes = Vec::new();
    for i in &n.input {
        sizes.push(cx.shape(n, i)?[ax]);
    }
    let s = cx.ints(&sizes);
    let parts = cx.b.op_multi(
        "Split",
        "concat_d",
        &[dy, &s],
        n.input.len(),
        vec![("axis", Attr::Int(ax as i64))],
    );
    Ok(n.input
        .iter()
        .zip(parts)
        .map(|(i, p)| cx.needs(i).then_some(p))
        .collect())
}
