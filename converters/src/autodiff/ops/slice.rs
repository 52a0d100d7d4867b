//! Slice (opset ≥ 10 input form): dX = Pad(dY) back into the input's extent; step 1 only for the gradient.
//! Integer slices of shape tensors are folded.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{FLOAT, ValInfo, norm_axis};
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Slice",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

/// Per axis of the data: (start, length, step) after clamping, as the ONNX spec defines.
fn ranges(n: &NodeProto, ins: &[Option<&ValInfo>], shape: &[i64]) -> Result<Vec<(i64, i64, i64)>> {
    if n.input.len() < 3 {
        return Err(unsupported(n, "the pre-opset-10 attribute form of Slice"));
    }
    let konst = |i: usize| -> Result<Option<Vec<i64>>> {
        match n.input.get(i).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(name) => input_info(n, ins, i)?
                .ints
                .clone()
                .map(Some)
                .ok_or_else(|| unsupported(n, format!("'{name}' is not a build-time constant"))),
        }
    };
    let starts = konst(1)?.unwrap_or_default();
    let ends = konst(2)?.unwrap_or_default();
    let axes = konst(3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = konst(4)?.unwrap_or_else(|| vec![1; starts.len()]);
    let mut out: Vec<(i64, i64, i64)> = shape.iter().map(|&d| (0, d, 1)).collect();
    for k in 0..starts.len() {
        let ax = norm_axis(axes[k], shape.len()).ok_or_else(|| shape_err(n, "axis out of range"))?;
        let d = shape[ax];
        let step = steps[k];
        if step <= 0 {
            return Err(unsupported(n, "non-positive slice steps"));
        }
        let fix = |v: i64| if v < 0 { (v + d).max(0) } else { v.min(d) };
        let (s, e) = (fix(starts[k]), fix(ends[k]));
        let len = if e > s { (e - s + step - 1) / step } else { 0 };
        out[ax] = (s, len, step);
    }
    Ok(out)
}

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = ranges(n, ins, &x.shape)?;
    let shape: Vec<i64> = r.iter().map(|&(_, l, _)| l).collect();
    let ints = match (&x.ints, x.shape.len()) {
        (Some(v), 1) if x.elem != FLOAT => {
            let (s, l, st) = r[0];
            Some((0..l).map(|i| v[(s + i * st) as usize]).collect())
        }
        _ => None,
    };
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints,
    }])
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    if !cx.needs(&n.input[0]) {
        return Ok(out);
    }
    let xs = cx.shape(n, &n.input[0])?;
    let infos: Vec<Option<ValInfo>> = n.input.iter().map(|i| cx.info.get(i).cloned()).collect();
    let refs: Vec<Option<&ValInfo>> = infos.iter().map(Option::as_ref).collect();
    let r = ranges(n, &refs, &xs)?;
    if r.iter().any(|&(_, _, st)| st != 1) {
        return Err(unsupported(n, "gradient of a strided Slice"));
    }
    let mut pads: Vec<i64> = r.iter().map(|&(s, _, _)| s).collect();
    pads.extend(r.iter().zip(&xs).map(|(&(s, l, _), &d)| d - s - l));
    out[0] = Some(cx.pad(dy, &pads, None));
    Ok(out)
}
