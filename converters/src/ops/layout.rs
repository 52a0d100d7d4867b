//! Ops that move values without arithmetic: reshapes, permutations, slicing, joining, padding, broadcasting.
//! Integer inputs (shape tensors) fold through them.

use crate::autodiff::ops::{
    concat, dropout, expand, flatten, gather, identity, pad, reshape, slice, split, squeeze, transpose,
};
use crate::ir::attr::NodeExt;
use crate::ops::common::{MAX_FOLD, identity as identity_infer, input_info};
use crate::ops::error::{Result, shape_err, unsupported};
use crate::ops::spec::{Affine, DataInputs, OpSpec, Target, Walk};
use crate::proto::NodeProto;
use crate::shapes::info::{ValInfo, broadcast, norm_axis};

const THROUGH: Walk = Walk::Through(DataInputs::All);

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("Identity", identity_infer, Affine::Yes)
        .grad(identity::GRAD)
        .walk(THROUGH)
        .identity(),
    OpSpec::new("Dropout", identity_infer, Affine::Yes)
        .grad(dropout::GRAD)
        .walk(THROUGH)
        .identity(),
    OpSpec::new("Reshape", infer_reshape, Affine::Yes)
        .grad(reshape::GRAD)
        .walk(Walk::Through(DataInputs::First))
        .target(Target::Reshape(1)),
    OpSpec::new("Flatten", infer_flatten, Affine::Yes)
        .grad(flatten::GRAD)
        .walk(THROUGH)
        .global(),
    OpSpec::new("Transpose", infer_transpose, Affine::Yes)
        .grad(transpose::GRAD)
        .walk(THROUGH),
    OpSpec::new("Squeeze", infer_squeeze, Affine::Yes)
        .grad(squeeze::GRAD)
        .walk(THROUGH),
    OpSpec::new("Unsqueeze", infer_unsqueeze, Affine::Yes)
        .grad(squeeze::GRAD)
        .walk(THROUGH),
    OpSpec::new("Concat", infer_concat, Affine::Yes)
        .grad(concat::GRAD)
        .walk(THROUGH)
        .join(),
    OpSpec::new("Split", infer_split, Affine::Yes).grad(split::GRAD),
    OpSpec::new("Slice", infer_slice, Affine::Yes).grad(slice::GRAD),
    OpSpec::new("Pad", infer_pad, Affine::Yes)
        .grad(pad::GRAD)
        .walk(Walk::Through(DataInputs::First)),
    OpSpec::new("Expand", infer_expand, Affine::Yes)
        .grad(expand::GRAD)
        .target(Target::Broadcast(1)),
    OpSpec::new("Gather", infer_gather, Affine::Yes).grad(gather::GRAD),
    OpSpec::new("Tile", infer_tile, Affine::Yes),
];

/// A constant integer input, or `None` when the input is absent.
fn const_input(n: &NodeProto, ins: &[Option<&ValInfo>], i: usize) -> Result<Option<Vec<i64>>> {
    match n.input.get(i).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(name) => input_info(n, ins, i)?
            .ints
            .clone()
            .map(Some)
            .ok_or_else(|| unsupported(n, format!("'{name}' is not a build-time constant"))),
    }
}

fn infer_reshape(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
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
    if shape.iter().any(|&d| d < 0) || shape.iter().product::<i64>() != x.numel() {
        return Err(shape_err(n, format!("cannot reshape {:?} to {:?}", x.shape, target)));
    }
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: x.ints.clone(),
    }])
}

fn infer_flatten(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = x.shape.len() as i64;
    let axis = n.get_i("axis")?.unwrap_or(1);
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&axis) {
        return Err(shape_err(n, format!("axis {axis} out of range")));
    }
    let (a, b) = x.shape.split_at(axis as usize);
    Ok(vec![ValInfo {
        shape: vec![a.iter().product(), b.iter().product()],
        elem: x.elem,
        ints: x.ints.clone(),
    }])
}

/// Transpose's permutation over `rank` axes (reversed when absent).
pub fn perm(n: &NodeProto, rank: usize) -> Result<Vec<usize>> {
    let p: Vec<usize> = match n.get_ints("perm")?.filter(|p| !p.is_empty()) {
        Some(p) => p.iter().map(|&a| a as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let mut seen = p.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(shape_err(n, format!("perm {p:?} is not a permutation of {rank} axes")));
    }
    Ok(p)
}

fn infer_transpose(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let p = perm(n, x.shape.len())?;
    Ok(vec![ValInfo {
        shape: p.iter().map(|&a| x.shape[a]).collect(),
        elem: x.elem,
        ints: None,
    }])
}

/// Squeeze/Unsqueeze axes: an input from opset 13, an attribute before.
fn axes_of(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Option<Vec<i64>>> {
    match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(_) => Ok(Some(
            input_info(n, ins, 1)?
                .ints
                .clone()
                .ok_or_else(|| unsupported(n, "axes are not a build-time constant"))?,
        )),
        None => Ok(n.get_ints("axes")?.filter(|a| !a.is_empty())),
    }
}

fn infer_unsqueeze(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let axes = axes_of(n, ins)?.ok_or_else(|| shape_err(n, "missing axes"))?;
    let r = x.shape.len() + axes.len();
    let mut ax: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, r).ok_or_else(|| shape_err(n, "axis out of range")))
        .collect::<Result<_>>()?;
    ax.sort_unstable();
    if ax.windows(2).any(|w| w[0] == w[1]) {
        return Err(shape_err(n, format!("repeated axes {axes:?}")));
    }
    let mut shape = x.shape.clone();
    for a in ax {
        if a > shape.len() {
            return Err(shape_err(n, "axis out of range"));
        }
        shape.insert(a, 1);
    }
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: x.ints.clone(),
    }])
}

fn infer_squeeze(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let drop: Vec<usize> = match axes_of(n, ins)? {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, x.shape.len()).ok_or_else(|| shape_err(n, "axis out of range")))
            .collect::<Result<_>>()?,
        None => (0..x.shape.len()).filter(|&i| x.shape[i] == 1).collect(),
    };
    if drop.iter().any(|&a| x.shape[a] != 1) {
        return Err(shape_err(n, format!("cannot squeeze a non-unit axis of {:?}", x.shape)));
    }
    let shape = x
        .shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, &d)| d)
        .collect();
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: x.ints.clone(),
    }])
}

fn infer_concat(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
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
        if (0..shape.len()).any(|d| d != ax && v.shape[d] != first.shape[d]) {
            return Err(shape_err(
                n,
                format!("inputs {:?} and {:?} differ off the axis", first.shape, v.shape),
            ));
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
        ints,
    }])
}

/// Split sizes along an axis of length `dim`: an input (opset ≥ 13), the `split` attribute, or equal parts.
pub fn split_sizes(n: &NodeProto, ins: &[Option<&ValInfo>], dim: i64) -> Result<Vec<i64>> {
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
    if dim < 0 {
        return Err(shape_err(n, format!("cannot split an axis of {dim}")));
    }
    let parts = n.get_i("num_outputs")?.unwrap_or(n.output.len() as i64).max(1);
    let chunk = (dim + parts - 1) / parts;
    Ok((0..parts).map(|i| (dim - i * chunk).clamp(0, chunk)).collect())
}

fn infer_split(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let ax = norm_axis(n.get_i("axis")?.unwrap_or(0), x.shape.len()).ok_or_else(|| shape_err(n, "bad axis"))?;
    let s = split_sizes(n, ins, x.shape[ax])?;
    if s.iter().sum::<i64>() != x.shape[ax] || s.len() != n.output.len() {
        return Err(shape_err(n, format!("split sizes {s:?} do not cover {}", x.shape[ax])));
    }
    Ok(s.iter()
        .map(|&d| {
            let mut sh = x.shape.clone();
            sh[ax] = d;
            ValInfo {
                shape: sh,
                elem: x.elem,
                ints: None,
            }
        })
        .collect())
}

/// One axis of a Slice after the spec's clamping: the first index taken, how many, and the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceAxis {
    pub start: i64,
    pub len: i64,
    pub step: i64,
}

/// Per axis of the data (opset ≥ 10 input form), as the ONNX spec clamps them: for a positive step start and
/// end lie in [0, d]; for a negative one start in [0, d−1] and end in [−1, d−1].
pub fn slice_axes(n: &NodeProto, ins: &[Option<&ValInfo>], shape: &[i64]) -> Result<Vec<SliceAxis>> {
    if n.input.len() < 3 {
        return Err(unsupported(n, "the pre-opset-10 attribute form of Slice"));
    }
    let starts = const_input(n, ins, 1)?.unwrap_or_default();
    let ends = const_input(n, ins, 2)?.unwrap_or_default();
    let axes = const_input(n, ins, 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = const_input(n, ins, 4)?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(shape_err(n, "starts, ends, axes and steps differ in length"));
    }
    let mut out: Vec<SliceAxis> = shape
        .iter()
        .map(|&d| SliceAxis {
            start: 0,
            len: d,
            step: 1,
        })
        .collect();
    for k in 0..starts.len() {
        let ax = norm_axis(axes[k], shape.len()).ok_or_else(|| shape_err(n, "axis out of range"))?;
        let d = shape[ax];
        let step = steps[k];
        if step == 0 {
            return Err(shape_err(n, "slice step 0"));
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        if d <= 0 {
            out[ax] = SliceAxis { start: 0, len: 0, step };
            continue;
        }
        let (s, e) = if step > 0 {
            (fix(starts[k]).clamp(0, d), fix(ends[k]).clamp(0, d))
        } else {
            (fix(starts[k]).clamp(0, d - 1), fix(ends[k]).clamp(-1, d - 1))
        };
        let span = if step > 0 { e - s } else { s - e };
        let len = if span > 0 {
            (span + step.abs() - 1) / step.abs()
        } else {
            0
        };
        out[ax] = SliceAxis { start: s, len, step };
    }
    Ok(out)
}

fn infer_slice(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = slice_axes(n, ins, &x.shape)?;
    let shape: Vec<i64> = r.iter().map(|a| a.len).collect();
    let ints = match (&x.ints, x.shape.len()) {
        (Some(v), 1) => {
            let a = r[0];
            (0..a.len)
                .map(|i| v.get((a.start + i * a.step) as usize).copied())
                .collect()
        }
        _ => None,
    };
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints,
    }])
}

/// Pad amounts in ONNX layout (all begins, then all ends) over every axis of a rank-`rank` input: the `pads`
/// attribute before opset 11, then inputs `pads` and (from opset 18) `axes`.
pub fn pad_amounts(n: &NodeProto, ins: &[Option<&ValInfo>], rank: usize) -> Result<Vec<i64>> {
    let raw = match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(_) => const_input(n, ins, 1)?.unwrap_or_default(),
        None => n.get_ints("pads")?.ok_or_else(|| shape_err(n, "missing pads"))?,
    };
    let axes: Vec<usize> = match const_input(n, ins, 3)? {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, rank).ok_or_else(|| shape_err(n, "axis out of range")))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if raw.len() != 2 * axes.len() {
        return Err(shape_err(n, format!("{} pads for {} axes", raw.len(), axes.len())));
    }
    let mut pads = vec![0; 2 * rank];
    for (k, &a) in axes.iter().enumerate() {
        pads[a] = raw[k];
        pads[a + rank] = raw[k + axes.len()];
    }
    Ok(pads)
}

fn infer_pad(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = x.shape.len();
    let p = pad_amounts(n, ins, r)?;
    let shape: Vec<i64> = (0..r).map(|i| x.shape[i] + p[i] + p[i + r]).collect();
    if shape.iter().any(|&d| d < 0) {
        return Err(shape_err(n, format!("pads {p:?} remove more than {:?}", x.shape)));
    }
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: None,
    }])
}

/// Expand broadcasts both ways: the output is the numpy broadcast of the input and the target shape.
fn infer_expand(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let target = input_info(n, ins, 1)?
        .ints
        .clone()
        .ok_or_else(|| unsupported(n, "target shape is not a build-time constant"))?;
    let shape = broadcast(&x.shape, &target)
        .ok_or_else(|| shape_err(n, format!("cannot expand {:?} to {target:?}", x.shape)))?;
    let ints = match &x.ints {
        Some(v) if v.len() == 1 && shape.iter().product::<i64>() as usize <= MAX_FOLD => {
            Some(vec![v[0]; shape.iter().product::<i64>() as usize])
        }
        _ => None,
    };
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints,
    }])
}

fn infer_gather(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let data = input_info(n, ins, 0)?;
    let idx = input_info(n, ins, 1)?;
    let ax = norm_axis(n.get_i("axis")?.unwrap_or(0), data.shape.len()).ok_or_else(|| shape_err(n, "bad axis"))?;
    let mut shape = data.shape[..ax].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&data.shape[ax + 1..]);
    let ints = match (&data.ints, &idx.ints, data.shape.len()) {
        (Some(d), Some(i), 1) => i
            .iter()
            .map(|&k| {
                let k = if k < 0 { k + d.len() as i64 } else { k };
                d.get(k as usize).copied()
            })
            .collect::<Option<Vec<i64>>>(),
        _ => None,
    };
    Ok(vec![ValInfo {
        shape,
        elem: data.elem,
        ints,
    }])
}

fn infer_tile(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let reps = const_input(n, ins, 1)?.ok_or_else(|| shape_err(n, "missing repeats"))?;
    if reps.len() != x.shape.len() {
        return Err(shape_err(n, "repeats do not match the input rank"));
    }
    Ok(vec![ValInfo {
        shape: x.shape.iter().zip(&reps).map(|(d, r)| d * r).collect(),
        elem: x.elem,
        ints: None,
    }])
}
