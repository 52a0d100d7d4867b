//! Split: dX = Concat of the output gradients, with zeros for outputs nothing used.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{ValInfo, norm_axis};
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Split",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn sizes(n: &NodeProto, ins: &[Option<&ValInfo>], dim: i64) -> Result<Vec<i64>> {
    if let Some(s) = n.input.get(1).filter(|s| !s.is_empty()) {
        let v = input_info(n, ins, 1)?;
        return v
            .ints
            .clone()
            .ok_or_else(|| unsupported(n, format!("split sizes '{s}' are not constant")));
    }
    if let Some(s) = n.get_ints("split")?.filter(|s| !s.is_empty()) {
        return Ok(s);
    }
    let parts = n.get_i("num_outputs")?.unwrap_or(n.output.len() as i64).max(1);
    let chunk = (dim + parts - 1) / parts;
    Ok((0..parts).map(|i| (dim - i * chunk).clamp(0, chunk)).collect())
}

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let ax = norm_axis(n.get_i("axis")?.unwrap_or(0), x.shape.len()).ok_or_else(|| shape_err(n, "bad axis"))?;
    let s = sizes(n, ins, x.shape[ax])?;
    if s.iter().sum::<i64>() != x.shape[ax] || s.len() != n.output.len() {
        return Err(shape_err(n, format!("split sizes {s:?} do not cover {}", x.shape[ax])));
    }
    Ok(s.iter()
        .map(|&d| {
            let mut sh = x.shape.clone();
            sh[ax] = d;
            ValInfo::float(sh)
        })
        .collect())
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    if !cx.needs(&n.input[0]) || dys.iter().all(Option::is_none) {
        return Ok(out);
    }
    let rank = cx.shape(n, &n.input[0])?.len();
    let ax = norm_axis(n.get_i("axis")?.unwrap_or(0), rank).ok_or_else(|| shape_err(n, "bad axis"))?;
    let mut parts = Vec::new();
    for (o, dy) in n.output.iter().zip(dys) {
        parts.push(match dy {
            Some(d) => d.clone(),
            None => {
                let s = cx.shape(n, o)?;
                cx.zeros(&s)
            }
        });
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    out[0] = Some(cx.op("Concat", "split_dx", &refs, vec![("axis", Attr::Int(ax as i64))]));
    Ok(out)
}
