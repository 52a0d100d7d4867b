//! Reductions (axes as an attribute before opset 18, as an input from 18, as the dynamo exporter writes
//! global pooling: `ReduceMean(x, [2, 3], keepdims=1)`).

use crate::autodiff::ops::reduce_mean;
use crate::ir::attr::NodeExt;
use crate::ops::common::input_info;
use crate::ops::error::{Result, shape_err, unsupported};
use crate::ops::spec::{Affine, OpSpec};
use crate::proto::NodeProto;
use crate::shapes::info::{ValInfo, norm_axis};

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("ReduceMean", infer_reduce, Affine::Yes)
        .grad(reduce_mean::GRAD)
        .global(),
    OpSpec::new("ReduceSum", infer_reduce, Affine::Yes),
    // The train step's gradient-norm and BN-variance sums; shape only, no rule (nothing differentiates through it).
    OpSpec::new("ReduceSumSquare", infer_reduce, Affine::No),
    OpSpec::new("ReduceMax", infer_reduce, Affine::No),
    OpSpec::new("ReduceMin", infer_reduce, Affine::No),
];

/// Reduced axes (sorted, non-negative) and keepdims.
pub fn reduced_axes(n: &NodeProto, ins: &[Option<&ValInfo>], rank: usize) -> Result<(Vec<usize>, bool)> {
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

fn infer_reduce(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let (ax, keep) = reduced_axes(n, ins, x.shape.len())?;
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
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: None,
    }])
}
