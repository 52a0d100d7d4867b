//! Flatten: dX = Reshape(dY, X.shape).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Flatten",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = x.shape.len() as i64;
    let axis = n.get_i("axis")?.unwrap_or(1);
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&axis) {
        return Err(shape_err(n, format!("axis {axis} out of range")));
    }
    let (a, b) = x.shape.split_at(axis as usize);
    Ok(vec![ValInfo::float(vec![a.iter().product(), b.iter().product()])])
}

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
