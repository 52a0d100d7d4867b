//! AveragePool (2-D): dX = depthwise ConvTranspose of dY/count with a ones kernel. The count per output position
//! follows the forward: with count_include_pad=0 the window's elements inside the input; with 1 those inside
//! the padded input (explicit pads count, the extra reach of a ceil_mode window does not, as in PyTorch and the
//! ONNX reference). When a ceil_mode window runs past the padded input, the ConvTranspose crops that reach with
//! a larger end pad instead of a negative output_padding.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, unsupported};
use crate::autodiff::ops::common::Window;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn geometry(n: &NodeProto, xs: &[i64]) -> Result<Window> {
    let w = crate::ops::pool::pool_window(n, xs)?;
    if w.dilations.iter().any(|&d| d != 1) {
        return Err(unsupported(n, "dilated AveragePool"));
    }
    Ok(w)
}

/// The divisor of each output position along one spatial axis.
fn counts(w: &Window, axis: usize, include_pad: bool) -> Vec<i64> {
    let r = w.rank();
    let (size, k, s) = (w.input[axis], w.kernel[axis], w.strides[axis]);
    let (pb, pe) = (w.pads[axis], w.pads[axis + r]);
    (0..w.output[axis])
        .map(|p| {
            let start = p * s - pb;
            let c = if include_pad {
                (start + k).min(size + pe) - start
            } else {
                (start + k).min(size) - start.max(0)
            };
            c.max(1)
        })
        .collect()
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
        return Err(unsupported(n, "AveragePool gradient for other than 2 spatial dims"));
    }
    let w = geometry(n, &xs)?;
    let include_pad = n.get_i("count_include_pad")?.unwrap_or(0) != 0;
    let (rows, cols) = (counts(&w, 0, include_pad), counts(&w, 1, include_pad));
    let inv: Vec<f32> = rows
        .iter()
        .flat_map(|&r| cols.iter().map(move |&c| 1.0 / (r * c) as f32))
        .collect();
    let scaled = if inv.iter().all(|&v| v == inv[0]) {
        let s = cx.scalar(inv[0]);
        cx.mul(dy, &s)
    } else {
        let t = cx.tensor("avgpool_inv_count", &[1, 1, w.output[0], w.output[1]], &inv);
        cx.mul(dy, &t)
    };
    let mut pads = w.pads.clone();
    let mut output_padding = vec![0; 2];
    for i in 0..2 {
        let reach = w.strides[i] * (w.output[i] - 1) + w.kernel[i];
        pads[i + 2] = pads[i + 2].max(reach - w.input[i] - pads[i]);
        output_padding[i] = w.input[i] + pads[i] + pads[i + 2] - reach;
    }
    let c = xs[1];
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let ones = cx.tensor("avgpool_ones", &[c, 1, kh, kw], &vec![1.0; (c * kh * kw) as usize]);
    let dx = cx.op(
        "ConvTranspose",
        "avgpool_dx",
        &[&scaled, &ones],
        vec![
            ("strides", Attr::Ints(w.strides.clone())),
            ("pads", Attr::Ints(pads)),
            ("group", Attr::Int(c)),
            ("kernel_shape", Attr::Ints(w.kernel.clone())),
            ("output_padding", Attr::Ints(output_padding)),
        ],
    );
    Ok(vec![Some(dx)])
}
