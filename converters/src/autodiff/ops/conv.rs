//! Conv (any spatial rank, strides, explicit/asymmetric/auto pads, dilations, groups incl. depthwise, bias).
//!
//! dX = ConvTranspose(dY, W) with the same geometry and the output_padding that restores the input size (without
//! it dX comes out one row short at stride 2). dW = Conv over transposed tensors: X viewed as [C/g, g·N, …] is
//! convolved with dYᵀ [M, N, …] as kernel, swapping strides and dilations; the result can over-cover the kernel
//! window by up to stride−1 and is sliced. dB = ΣdY over batch and space.

use crate::autodiff::cx::{DwStrategy, GradCx};
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::Window;
use crate::autodiff::ops::common::{out0, window};
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let (x, w) = (n.input[0].as_str(), n.input[1].as_str());
    let xs = cx.shape(n, x)?;
    let ws = cx.shape(n, w)?;
    let win = window(n, &xs[2..], ws[2..].to_vec(), false)?;
    let group = n.get_i("group")?.unwrap_or(1);
    let r = win.rank();
    let base = out0(n).to_string();

    if cx.needs(x) {
        let r = win.rank();
        let stride1 = win.strides.iter().all(|&v| v == 1);
        let fits = (0..r).all(|i| {
            let span = win.dilations[i] * (win.kernel[i] - 1);
            win.pads[i] <= span && win.pads[i + r] <= span
        });
        let dx = if group == 1 && stride1 && fits && cx.dw == DwStrategy::Auto {
            dx_by_conv(cx, dy, w, &win, &base)
        } else {
            cx.op(
                "ConvTranspose",
                &format!("{base}_dx"),
                &[dy, w],
                vec![
                    ("strides", Attr::Ints(win.strides.clone())),
                    ("pads", Attr::Ints(win.pads.clone())),
                    ("dilations", Attr::Ints(win.dilations.clone())),
                    ("group", Attr::Int(group)),
                    ("kernel_shape", Attr::Ints(win.kernel.clone())),
                    ("output_padding", Attr::Ints(win.output_padding())),
                ],
            )
        };
        out[0] = Some(dx);
    }

    if cx.needs(w) && group == 1 && r == 2 && cx.dw != DwStrategy::TransposedConv {
        out[1] = Some(dw_im2col(cx, x, dy, &xs, &ws, &win, &base));
    } else if cx.needs(w) {
        let (nb, c) = (xs[0], xs[1]);
        let cg = c / group;
        let spatial: Vec<i64> = (2..2 + r as i64).collect();
        let mut swap01 = vec![1, 0];
        swap01.extend(&spatial);
        let x2 = if group == 1 {
            cx.op(
                "Transpose",
                &format!("{base}_xT"),
                &[x],
                vec![("perm", Attr::Ints(swap01.clone()))],
            )
        } else {
            let mut s5 = vec![nb, group, cg];
            s5.extend(&xs[2..]);
            let xr = cx.reshape(x, &s5);
            let mut perm = vec![2, 1, 0];
            perm.extend(spatial.iter().map(|a| a + 1));
            let xt = cx.op(
                "Transpose",
                &format!("{base}_xT"),
                &[&xr],
                vec![("perm", Attr::Ints(perm))],
            );
            let mut s4 = vec![cg, group * nb];
            s4.extend(&xs[2..]);
            cx.reshape(&xt, &s4)
        };
        let k = cx.op(
            "Transpose",
            &format!("{base}_dyT"),
            &[dy],
            vec![("perm", Attr::Ints(swap01.clone()))],
        );
        let dwt = cx.op(
            "Conv",
            &format!("{base}_dwT"),
            &[&x2, &k],
            vec![
                ("strides", Attr::Ints(win.dilations.clone())),
                ("dilations", Attr::Ints(win.strides.clone())),
                ("pads", Attr::Ints(win.pads.clone())),
                ("group", Attr::Int(group)),
            ],
        );
        let covered: Vec<i64> = (0..r)
            .map(|i| {
                (win.input[i] + win.pads[i] + win.pads[i + r] - (win.strides[i] * (win.output[i] - 1) + 1))
                    / win.dilations[i]
                    + 1
            })
            .collect();
        let dwt = if covered != win.kernel {
            let zeros = vec![0; r];
            let steps = vec![1; r];
            cx.slice(&dwt, &zeros, &win.kernel, &spatial, &steps)
        } else {
            dwt
        };
        let dw = cx.op(
            "Transpose",
            &format!("{base}_dw"),
            &[&dwt],
            vec![("perm", Attr::Ints(swap01))],
        );
        out[1] = Some(dw);
    }

    if let Some(b) = n.input.get(2).filter(|b| !b.is_empty())
        && cx.needs(b)
    {
        let mut axes = vec![0];
        axes.extend(2..2 + r as i64);
        out[2] = Some(cx.reduce_sum(dy, &axes, false));
    }
    Ok(out)
}

/// dW by one batched MatMul over the im2col of X: the strided window samples S_ij of the padded X, one per kernel
/// offset, are stacked on the channel axis as [N, kh·kw·C, Ho·Wo] and multiplied by dY viewed as [N, Ho·Wo, M];
/// the per-sample [N, kh·kw·C, M] products are summed over N. One MatMul with a kh·kw-times taller left operand
/// instead of one per offset: 0.77-0.81× the time on ResNet-20's 16×16 and 8×8 layers at batch 128 (2 threads),
/// equal on the 32×32 ones. The batch dimension lets ORT spread the GEMMs over threads, which one long-K Gemm
/// with a small output could not.
fn dw_im2col(cx: &mut GradCx, x: &str, dy: &str, xs: &[i64], ws: &[i64], win: &Window, base: &str) -> String {
    let (nb, c, m) = (xs[0], xs[1], ws[0]);
    let (kh, kw) = (win.kernel[0], win.kernel[1]);
    let (ho, wo) = (win.output[0], win.output[1]);
    let (sh, sw) = (win.strides[0], win.strides[1]);
    let (dh, dw) = (win.dilations[0], win.dilations[1]);
    let p = &win.pads;
    let xp = if p.iter().any(|&v| v > 0) {
        cx.pad(x, &[0, 0, p[0], p[1], 0, 0, p[2], p[3]], Some(0.0))
    } else {
        x.to_string()
    };
    let dy3 = cx.reshape(dy, &[nb, m, ho * wo]);
    let dyt = cx.op(
        "Transpose",
        &format!("{base}_dyT"),
        &[&dy3],
        vec![("perm", Attr::Ints(vec![0, 2, 1]))],
    );
    let (hp, wp) = (xs[2] + p[0] + p[2], xs[3] + p[1] + p[3]);
    let mut samples = Vec::with_capacity((kh * kw) as usize);
    for i in 0..kh {
        for j in 0..kw {
            let (oh, ow) = (i * dh, j * dw);
            let full = oh == 0 && ow == 0 && sh == 1 && sw == 1 && ho == hp && wo == wp;
            samples.push(if full {
                xp.clone()
            } else {
                cx.slice(
                    &xp,
                    &[oh, ow],
                    &[oh + sh * (ho - 1) + 1, ow + sw * (wo - 1) + 1],
                    &[2, 3],
                    &[sh, sw],
                )
            });
        }
    }
    let cols = if samples.len() == 1 {
        samples.pop().unwrap_or_default()
    } else {
        let refs: Vec<&str> = samples.iter().map(String::as_str).collect();
        cx.op(
            "Concat",
            &format!("{base}_dw_cols"),
            &refs,
            vec![("axis", Attr::Int(1))],
        )
    };
    let cols3 = cx.reshape(&cols, &[nb, kh * kw * c, ho * wo]);
    let prod = cx.op("MatMul", &format!("{base}_dw_mm"), &[&cols3, &dyt], vec![]);
    let summed = cx.reduce_sum(&prod, &[0], false);
    // [kh·kw·C, M] → [kh·kw, C, M] → [M, C, kh·kw] → [M, C, kh, kw]
    let stacked = cx.reshape(&summed, &[kh * kw, c, m]);
    let t = cx.op(
        "Transpose",
        &format!("{base}_dw_t"),
        &[&stacked],
        vec![("perm", Attr::Ints(vec![2, 1, 0]))],
    );
    cx.reshape(&t, ws)
}

/// Stride-1 dX as a plain Conv (ORT's Conv kernels beat ConvTranspose on CPU): dY convolved with W transposed to
/// [C, M, …] and flipped in space, padded by d·(k−1) − p on each side.
fn dx_by_conv(cx: &mut GradCx, dy: &str, w: &str, win: &Window, base: &str) -> String {
    let r = win.rank();
    let mut perm = vec![1, 0];
    perm.extend(2..2 + r as i64);
    let wt = cx.op(
        "Transpose",
        &format!("{base}_wT"),
        &[w],
        vec![("perm", Attr::Ints(perm))],
    );
    let axes: Vec<i64> = (2..2 + r as i64).collect();
    let starts = vec![-1; r];
    let ends = vec![i64::MIN; r];
    let steps = vec![-1; r];
    let wf = cx.slice(&wt, &starts, &ends, &axes, &steps);
    let pads: Vec<i64> = (0..2 * r)
        .map(|i| win.dilations[i % r] * (win.kernel[i % r] - 1) - win.pads[i])
        .collect();
    cx.op(
        "Conv",
        &format!("{base}_dx"),
        &[dy, &wf],
        vec![
            ("pads", Attr::Ints(pads)),
            ("dilations", Attr::Ints(win.dilations.clone())),
            ("kernel_shape", Attr::Ints(win.kernel.clone())),
        ],
    )
}
