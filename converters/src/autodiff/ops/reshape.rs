//! Reshape: dX = Reshape(dY, X.shape). The target shape must fold to a constant (it does for exported
//! Shape→Gather→Concat chains once the batch size is fixed).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{FLOAT, ValInfo};
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Reshape",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let target = input_info(n, ins, 1)?
        .ints
        .clone()
        .ok_or_else(|| unsupported(n, "target shape is not a build-time constant"))?;
    let allow_zero = n.get_i("allowzero")?.unwrap_or(0) != 0;
    let mut shape: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 && !allow_zero {
                x.shape.get(i).copied().unwrap_or(0)
            } else {
                d
            }
        })
        .collect();
    let known: i64 = shape.iter().filter(|&&d| d != -1).product();
    if let Some(p) = shape.iter().position(|&d| d == -1) {
        if known == 0 {
            return Err(shape_err(n, "cannot infer -1 next to a zero dim"));
        }
        shape[p] = x.numel() / known;
    }
    if shape.iter().product::<i64>() != x.numel() {
        return Err(shape_err(n, format!("cannot reshape {:?} to {:?}", x.shape, target)));
    }
    let ints = if x.elem != FLOAT { x.ints.clone() } else { None };
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints,
    }])
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None, None]);
    };
    if !cx.needs(&n.input[0]) {
        return Ok(vec![None, None]);
    }
    let xs = cx.shape(n, &n.input[0])?;
    Ok(vec![Some(cx.reshape(dy, &xs)), None])
}
