//! Conv (any spatial rank, strides, explicit/asymmetric/auto pads, dilations, groups incl. depthwise, bias).
//!
//! dX = ConvTranspose(dY, W) with the same geometry and the output_padding that restores the input size (without
//! it dX comes out one row short at stride 2). dW = Conv over transposed tensors: X viewed as [C/g, g·N, …] is
//! convolved with dYᵀ [M, N, …] as kernel, swapping strides and dilations; the result can over-cover the kernel
//! window by up to stride−1 and is sliced. dB = ΣdY over batch and space.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::{input_info, out0, window};
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Conv",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[1, 2],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let w = input_info(n, ins, 1)?;
    if x.shape.len() < 3 || w.shape.len() != x.shape.len() {
        return Err(shape_err(
            n,
            format!("input {:?} and weight {:?} ranks differ", x.shape, w.shape),
        ));
    }
    let group = n.get_i("group")?.unwrap_or(1);
    if x.shape[1] != w.shape[1] * group || w.shape[0] % group != 0 {
        return Err(shape_err(
            n,
            format!(
                "{} input channels do not match weight {:?} with group {group}",
                x.shape[1], w.shape
            ),
        ));
    }
    let win = window(n, &x.shape[2..], w.shape[2..].to_vec(), false)?;
    let mut shape = vec![x.shape[0], w.shape[0]];
    shape.extend(&win.output);
    Ok(vec![ValInfo::float(shape)])
}

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
        let dx = cx.op(
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
        );
        out[0] = Some(dx);
    }

    if cx.needs(w) {
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
