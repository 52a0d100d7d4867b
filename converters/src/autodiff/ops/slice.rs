//! Slice: dX places dY back at the positions the slice took, zeros elsewhere. Along an axis with step s > 1,
//! dY is zero-interleaved (a unit axis padded to s, then merged: element i lands at i·s) and trimmed to the
//! (L − 1)·s + 1 positions from the first taken index to the last; a negative step takes the same positions in
//! reverse, so dY is reversed first. One Pad then restores the input's extent.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::ops::layout::slice_axes;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = cx.first_input_dy(n, dys) else {
        return Ok(out);
    };
    let xs = cx.shape(n, &n.input[0])?;
    let axes = slice_axes(n, &cx.infos(n), &xs)?;
    if axes.iter().any(|a| a.len == 0) {
        out[0] = Some(cx.zeros(&xs));
        return Ok(out);
    }
    let rank = xs.len();
    let mut g = dy.to_string();
    let mut cur: Vec<i64> = axes.iter().map(|a| a.len).collect();
    let mut pads = vec![0; 2 * rank];
    for (ax, a) in axes.iter().enumerate() {
        let stride = a.step.abs();
        let first = if a.step > 0 {
            a.start
        } else {
            a.start - (a.len - 1) * stride
        };
        if a.step < 0 && a.len > 1 {
            g = cx.slice(&g, &[-1], &[i64::MIN], &[ax as i64], &[-1]);
        }
        if stride > 1 && a.len > 1 {
            let mut unit = cur.clone();
            unit.insert(ax + 1, 1);
            let u = cx.reshape(&g, &unit);
            let mut spread = vec![0; 2 * (rank + 1)];
            spread[rank + 1 + ax + 1] = stride - 1;
            let p = cx.pad(&u, &spread, None);
            let mut merged = cur.clone();
            merged[ax] = a.len * stride;
            let m = cx.reshape(&p, &merged);
            let keep = (a.len - 1) * stride + 1;
            g = cx.slice(&m, &[0], &[keep], &[ax as i64], &[1]);
            cur[ax] = keep;
        }
        pads[ax] = first;
        pads[rank + ax] = xs[ax] - first - cur[ax];
    }
    out[0] = Some(if pads.iter().all(|&p| p == 0) {
        g
    } else {
        cx.pad(&g, &pads, None)
    });
    Ok(out)
}
