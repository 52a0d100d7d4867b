//! Concat: dY is split back into the inputs' extents along the axis. Integer Concats (shape arithmetic in
//! exported graphs) are folded at build time and carry no gradient.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::{FLOAT, ValInfo, norm_axis};
use crate::autodiff::ops::common::{input_info, out0};
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Concat",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let first = input_info(n, ins, 0)?;
    let axis = n.get_i("axis")?.ok_or_else(|| shape_err(n, "missing axis"))?;
    let ax = norm_axis(axis, first.shape.len()).ok_or_else(|| shape_err(n, format!("axis {axis} out of range")))?;
    let mut shape = first.shape.clone();
    shape[ax] = 0;
    let mut ints = Some(Vec::new());
    for i in 0..n.input.len() {
        let v = input_info(n, ins, i)?;
        if v.shape.len() != shape.len() {
            return Err(shape_err(n, "inputs differ in rank"));
        }
        shape[ax] += v.shape[ax];
        match (&mut ints, &v.ints) {
            (Some(acc), Some(vals)) if v.shape.len() == 1 => acc.extend(vals),
            _ => ints = None,
        }
    }
    Ok(vec![ValInfo {
        shape,
        elem: first.elem,
        ints: if first.elem == FLOAT { None } else { ints },
    }])
}

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
