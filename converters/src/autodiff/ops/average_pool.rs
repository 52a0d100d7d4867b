//! AveragePool (2-D): dX = depthwise ConvTranspose of dY/count with a ones kernel. With count_include_pad=0 and
//! padding, the count differs per output position and is precomputed as a constant [1,1,Ho,Wo].

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::{Window, input_info, window};
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "AveragePool",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn geometry(n: &NodeProto, xs: &[i64]) -> Result<Window> {
    let kernel = n
        .get_ints("kernel_shape")?
        .ok_or_else(|| shape_err(n, "missing kernel_shape"))?;
    if n.get_i("ceil_mode")?.unwrap_or(0) != 0 {
        return Err(unsupported(n, "AveragePool with ceil_mode=1"));
    }
    let w = window(n, &xs[2..], kernel, false)?;
    if w.dilations.iter().any(|&d| d != 1) {
        return Err(unsupported(n, "dilated AveragePool"));
    }
    Ok(w)
}

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let w = geometry(n, &x.shape)?;
    let mut shape = x.shape[..2].to_vec();
    shape.extend(&w.output);
    Ok(vec![ValInfo::float(shape)])
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
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let include_pad = n.get_i("count_include_pad")?.unwrap_or(0) != 0;
    let scaled = if include_pad || w.pads.iter().all(|&p| p == 0) {
        let inv = cx.scalar(1.0 / (kh * kw) as f32);
        cx.mul(dy, &inv)
    } else {
        let (ho, wo) = (w.output[0], w.output[1]);
        let mut inv = Vec::with_capacity((ho * wo) as usize);
        for p in 0..ho {
            for q in 0..wo {
                let rows = (p * w.strides[0] - w.pads[0]..p * w.strides[0] - w.pads[0] + kh)
                    .filter(|r| (0..xs[2]).contains(r))
                    .count();
                let cols = (q * w.strides[1] - w.pads[1]..q * w.strides[1] - w.pads[1] + kw)
                    .filter(|r| (0..xs[3]).contains(r))
                    .count();
                inv.push(1.0 / (rows * cols).max(1) as f32);
            }
        }
        let t = cx.tensor("avgpool_inv_count", &[1, 1, ho, wo], &inv);
        cx.mul(dy, &t)
    };
    let c = xs[1];
    let ones = cx.tensor("avgpool_ones", &[c, 1, kh, kw], &vec![1.0; (c * kh * kw) as usize]);
    let dx = cx.op(
        "ConvTranspose",
        "avgpool_dx",
        &[&scaled, &ones],
        vec![
            ("strides", Attr::Ints(w.strides.clone())),
            ("pads", Attr::Ints(w.pads.clone())),
            ("group", Attr::Int(c)),
            ("kernel_shape", Attr::Ints(w.kernel.clone())),
            ("output_padding", Attr::Ints(w.output_padding())),
        ],
    );
    Ok(vec![Some(dx)])
}
