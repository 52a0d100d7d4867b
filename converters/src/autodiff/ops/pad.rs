//! Pad (constant mode): dX = the part of dY that covers X. Negative pads crop X; the cropped elements get zero
//! gradient, restored by a Pad of dY's slice. Reflect and edge modes are not supported.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, unsupported};
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::ops::layout::pad_amounts;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = cx.first_input_dy(n, dys) else {
        return Ok(out);
    };
    let mode = n.get_s("mode")?.unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return Err(unsupported(n, format!("gradient of Pad in '{mode}' mode")));
    }
    let xs = cx.shape(n, &n.input[0])?;
    let r = xs.len();
    let p = pad_amounts(n, &cx.infos(n), r)?;
    let axes: Vec<i64> = (0..r as i64).collect();
    let starts: Vec<i64> = (0..r).map(|i| p[i].max(0)).collect();
    let kept: Vec<i64> = (0..r).map(|i| xs[i] - (-p[i]).max(0) - (-p[i + r]).max(0)).collect();
    let ends: Vec<i64> = (0..r).map(|i| starts[i] + kept[i]).collect();
    let inner = cx.slice(dy, &starts, &ends, &axes, &vec![1; r]);
    let crop: Vec<i64> = (0..2 * r).map(|i| (-p[i]).max(0)).collect();
    out[0] = Some(if crop.iter().all(|&c| c == 0) {
        inner
    } else {
        cx.pad(&inner, &crop, None)
    });
    Ok(out)
}
