//! MaxPool (2-D; strides, pads, dilations, ceil_mode), gradient by masks rather than Indices.
//!
//! MaxPool-with-Indices plus ScatterElements is ~24× slower than plain MaxPool on ORT CPU, so for each kernel
//! offset (i, j) the rule takes the strided window sample of the −inf-padded input, compares it with Y, keeps
//! only the first maximum in row-major window order (PyTorch's tie rule), and places the masked dY back at the
//! sampled positions (zero-interleave by reshape + pad). Overlapping windows accumulate, as they must.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::ops::common::{Window, out0};
use crate::autodiff::registry::Grad;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn geometry(n: &NodeProto, xs: &[i64]) -> Result<Window> {
    Ok(crate::ops::pool::pool_window(n, xs)?)
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
    if xs.len() != 4 {
        return Err(unsupported(n, "MaxPool gradient for other than 2 spatial dims"));
    }
    let w = geometry(n, &xs)?;
    let tiles_fit = w.output[0] * w.kernel[0] <= xs[2] && w.output[1] * w.kernel[1] <= xs[3];
    if tiles_fit && w.kernel == w.strides && w.pads.iter().all(|&p| p == 0) && w.dilations.iter().all(|&d| d == 1) {
        return Ok(vec![Some(tiled(cx, n, &xs, &w, dy))]);
    }
    let (nb, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (ho, wo) = (w.output[0], w.output[1]);
    let (sh, sw) = (w.strides[0], w.strides[1]);
    let (dh, dw) = (w.dilations[0], w.dilations[1]);
    let (pt, pl, pb, pr) = (w.pads[0], w.pads[1], w.pads[2], w.pads[3]);
    // ceil_mode windows may run past the padded input; pad further so every strided sample exists.
    let need_h = sh * (ho - 1) + dh * (w.kernel[0] - 1) + 1;
    let need_w = sw * (wo - 1) + dw * (w.kernel[1] - 1) + 1;
    let eh = (need_h - (h + pt + pb)).max(0);
    let ew = (need_w - (wd + pl + pr)).max(0);
    let (hp, wp) = (h + pt + pb + eh, wd + pl + pr + ew);
    let xp = if [pt, pl, pb + eh, pr + ew].iter().any(|&p| p > 0) {
        cx.pad(x, &[0, 0, pt, pl, 0, 0, pb + eh, pr + ew], Some(f32::MIN))
    } else {
        x.to_string()
    };
    let y = out0(n).to_string();
    let mut taken: Option<String> = None;
    let mut acc: Option<String> = None;
    for i in 0..w.kernel[0] {
        for j in 0..w.kernel[1] {
            let (oh, ow) = (i * dh, j * dw);
            let sample = cx.slice(
                &xp,
                &[oh, ow],
                &[oh + sh * (ho - 1) + 1, ow + sw * (wo - 1) + 1],
                &[2, 3],
                &[sh, sw],
            );
            let eq = cx.op("Equal", "mp_eq", &[&sample, &y], vec![]);
            let m = match taken.take() {
                None => {
                    taken = Some(eq.clone());
                    eq
                }
                Some(t) => {
                    let free = cx.op("Not", "mp_free", &[&t], vec![]);
                    let m = cx.op("And", "mp_first", &[&eq, &free], vec![]);
                    taken = Some(cx.op("Or", "mp_taken", &[&t, &eq], vec![]));
                    m
                }
            };
            let part = cx.mask(&m, dy);
            let placed = place(cx, &part, [nb, c, ho, wo], [sh, sw], [oh, ow], [hp, wp]);
            acc = Some(match acc {
                None => placed,
                Some(a) => cx.op("Add", "mp_acc", &[&a, &placed], vec![]),
            });
        }
    }
    let acc = acc.ok_or_else(|| shape_err(n, "empty kernel"))?;
    let dx = if hp != h || wp != wd {
        cx.slice(&acc, &[pt, pl], &[pt + h, pl + wd], &[2, 3], &[1, 1])
    } else {
        acc
    };
    Ok(vec![Some(dx)])
}

/// Non-overlapping windows (kernel = stride, no padding, the common 2×2/2): view X as [N,C,Ho,Wo,kh·kw]
/// windows, mark the first maximum of each with CumSum over the window, and route dY there, in ~10 full-size
/// ops instead of kh·kw rounds of slices and pads.
fn tiled(cx: &mut GradCx, n: &NodeProto, xs: &[i64], w: &Window, dy: &str) -> String {
    let (nb, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (ho, wo) = (w.output[0], w.output[1]);
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let x = n.input[0].as_str();
    let (hc, wc) = (ho * kh, wo * kw);
    let xc = if hc != h || wc != wd {
        cx.slice(x, &[0, 0], &[hc, wc], &[2, 3], &[1, 1])
    } else {
        x.to_string()
    };
    let x6 = cx.reshape(&xc, &[nb, c, ho, kh, wo, kw]);
    let xw = cx.op(
        "Transpose",
        "mp_win",
        &[&x6],
        vec![("perm", Attr::Ints(vec![0, 1, 2, 4, 3, 5]))],
    );
    let xw = cx.reshape(&xw, &[nb, c, ho, wo, kh * kw]);
    let y5 = cx.reshape(out0(n), &[nb, c, ho, wo, 1]);
    let eq = cx.op("Equal", "mp_eq", &[&xw, &y5], vec![]);
    let eqf = cx.op("Cast", "mp_eqf", &[&eq], vec![("to", Attr::Int(1))]);
    let axis = cx.ints(&[4]);
    let cum = cx.op("CumSum", "mp_cum", &[&eqf, &axis], vec![]);
    let one = cx.scalar(1.0);
    let first_cum = cx.op("Equal", "mp_first_cum", &[&cum, &one], vec![]);
    let first = cx.op("And", "mp_first", &[&eq, &first_cum], vec![]);
    let dy5 = cx.reshape(dy, &[nb, c, ho, wo, 1]);
    let routed = cx.mask(&first, &dy5);
    let r6 = cx.reshape(&routed, &[nb, c, ho, wo, kh, kw]);
    let back = cx.op(
        "Transpose",
        "mp_unwin",
        &[&r6],
        vec![("perm", Attr::Ints(vec![0, 1, 2, 4, 3, 5]))],
    );
    let dxc = cx.reshape(&back, &[nb, c, hc, wc]);
    if hc != h || wc != wd {
        cx.pad(&dxc, &[0, 0, 0, 0, 0, 0, h - hc, wd - wc], None)
    } else {
        dxc
    }
}

/// Scatter `v` [N,C,Ho,Wo] to rows off_h + s_h·p and columns off_w + s_w·q of a zero [N,C,Hp,Wp] tensor.
fn place(cx: &mut GradCx, v: &str, dims: [i64; 4], s: [i64; 2], off: [i64; 2], target: [i64; 2]) -> String {
    let [nb, c, ho, wo] = dims;
    let spread = if s == [1, 1] {
        v.to_string()
    } else {
        let r = cx.reshape(v, &[nb, c, ho, 1, wo, 1]);
        let p = cx.pad(&r, &[0, 0, 0, 0, 0, 0, 0, 0, 0, s[0] - 1, 0, s[1] - 1], None);
        cx.reshape(&p, &[nb, c, ho * s[0], wo * s[1]])
    };
    let lh = (ho * s[0]).min(target[0] - off[0]);
    let lw = (wo * s[1]).min(target[1] - off[1]);
    let cut = if lh < ho * s[0] || lw < wo * s[1] {
        cx.slice(&spread, &[0, 0], &[lh, lw], &[2, 3], &[1, 1])
    } else {
        spread
    };
    cx.pad(
        &cut,
        &[
            0,
            0,
            off[0],
            off[1],
            0,
            0,
            target[0] - off[0] - lh,
            target[1] - off[1] - lw,
        ],
        None,
    )
}
