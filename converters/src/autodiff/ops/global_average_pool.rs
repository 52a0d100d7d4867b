//! GlobalAveragePool: dX = Expand(dY / (H·W), X.shape).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "GlobalAveragePool",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    if x.shape.len() < 3 {
        return Err(shape_err(n, "needs spatial dims"));
    }
    let mut shape = x.shape[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, x.shape.len() - 2));
    Ok(vec![ValInfo::float(shape)])
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let x = n.input[0].as_str();
    if !cx.needs(x) {
        return Ok(vec![None]);
    }
    let xs = cx.shape(n, x)?;
    let area: i64 = xs[2..].iter().product();
    let inv = cx.scalar(1.0 / area as f32);
    let s = cx.mul(dy, &inv);
    let shape = cx.ints(&xs);
    Ok(vec![Some(cx.op("Expand", "gap_dx", &[&s, &shape], vec![]))])
}
