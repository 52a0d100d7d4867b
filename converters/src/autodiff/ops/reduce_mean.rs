//! ReduceMean (axes as attribute before opset 18, as input from 18): dX = Expand(dY / count, X.shape), with
//! dY reshaped to keep the reduced axes first when keepdims=0.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{ValInfo, norm_axis};
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "ReduceMean",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

/// Reduced axes (sorted, non-negative) and keepdims.
fn axes(n: &NodeProto, ins: &[Option<&ValInfo>], rank: usize) -> Result<(Vec<usize>, bool)> {
    let keep = n.get_i("keepdims")?.unwrap_or(1) != 0;
    let raw = match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(_) => input_info(n, ins, 1)?
            .ints
            .clone()
            .ok_or_else(|| unsupported(n, "axes are not a build-time constant"))?,
        None => n.get_ints("axes")?.unwrap_or_default(),
    };
    let mut ax: Vec<usize> = if raw.is_empty() {
        if n.get_i("noop_with_empty_axes")?.unwrap_or(0) != 0 {
            return Err(unsupported(n, "noop_with_empty_axes"));
        }
        (0..rank).collect()
    } else {
        raw.iter()
            .map(|&a| norm_axis(a, rank).ok_or_else(|| shape_err(n, format!("axis {a} out of range"))))
            .collect::<Result<_>>()?
    };
    ax.sort_unstable();
    ax.dedup();
    Ok((ax, keep))
}

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let (ax, keep) = axes(n, ins, x.shape.len())?;
    let shape = x
        .shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (ax.contains(&i), keep) {
            (true, true) => Some(1),
            (true, false) => None,
            _ => Some(d),
        })
        .collect();
    Ok(vec![ValInfo::float(shape)])
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let x = n.input[0].as_str();
    if !cx.needs(x) {
        return Ok(out);
    }
    let xs = cx.shape(n, x)?;
    let infos: Vec<Option<ValInfo>> = n.input.iter().map(|i| cx.info.get(i).cloned()).collect();
    let refs: Vec<Option<&ValInfo>> = infos.iter().map(Option::as_ref).collect();
    let (ax, _) = axes(n, &refs, xs.len())?;
    let kept: Vec<i64> = xs
        .iter()
        .enumerate()
        .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
        .collect();
    let count: i64 = ax.iter().map(|&i| xs[i]).product();
    let r = cx.reshape(dy, &kept);
    let inv = cx.scalar(1.0 / count as f32);
    let s = cx.mul(&r, &inv);
    let shape = cx.ints(&xs);
    out[0] = Some(cx.op("Expand", "rmean_dx", &[&s, &shape], vec![]));
    Ok(out)
}
