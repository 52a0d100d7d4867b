//! Attribute parsing shared by Conv and the pools, and small infer helpers shared by elementwise ops.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{ValInfo, broadcast};
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;
use crate::proto::tensor_proto::DataType;

/// Spatial geometry of a Conv or pool, with auto_pad resolved to explicit pads.
#[derive(Debug, Clone)]
pub struct Window {
    pub kernel: Vec<i64>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    /// ONNX layout: all begins, then all ends.
    pub pads: Vec<i64>,
    /// Input spatial dims.
    pub input: Vec<i64>,
    pub output: Vec<i64>,
}

impl Window {
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// output_padding that makes ConvTranspose reproduce the input size exactly.
    pub fn output_padding(&self) -> Vec<i64> {
        (0..self.rank())
            .map(|i| {
                let r = self.rank();
                self.input[i] + self.pads[i] + self.pads[i + r]
                    - (self.strides[i] * (self.output[i] - 1) + self.dilations[i] * (self.kernel[i] - 1) + 1)
            })
            .collect()
    }
}

fn ints_or(n: &NodeProto, name: &str, default: Vec<i64>) -> Result<Vec<i64>> {
    Ok(n.get_ints(name)?.filter(|v| !v.is_empty()).unwrap_or(default))
}

/// Resolve kernel/strides/dilations/pads/auto_pad of `n` over input spatial dims `input`.
pub fn window(n: &NodeProto, input: &[i64], kernel: Vec<i64>, ceil_mode: bool) -> Result<Window> {
    let r = input.len();
    let strides = ints_or(n, "strides", vec![1; r])?;
    let dilations = ints_or(n, "dilations", vec![1; r])?;
    let mut pads = ints_or(n, "pads", vec![0; 2 * r])?;
    if strides.len() != r || dilations.len() != r || pads.len() != 2 * r || kernel.len() != r {
        return Err(shape_err(n, format!("attributes do not match {r} spatial dims")));
    }
    let auto_pad = n.get_s("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let mut output = vec![0; r];
    for i in 0..r {
        let eff = dilations[i] * (kernel[i] - 1) + 1;
        match auto_pad.as_str() {
            "NOTSET" | "" => {}
            "VALID" => {
                pads[i] = 0;
                pads[i + r] = 0;
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                let out = (input[i] + strides[i] - 1) / strides[i];
                let total = ((out - 1) * strides[i] + eff - input[i]).max(0);
                let small = total / 2;
                let (b, e) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[i] = b;
                pads[i + r] = e;
            }
            other => return Err(unsupported(n, format!("auto_pad={other}"))),
        }
        let span = input[i] + pads[i] + pads[i + r] - eff;
        if span < 0 {
            return Err(shape_err(
                n,
                format!("window larger than padded input on spatial axis {i}"),
            ));
        }
        output[i] = if ceil_mode {
            let mut o = (span + strides[i] - 1) / strides[i] + 1;
            // PyTorch/ONNX rule: the last window must start inside the input or left padding.
            if (o - 1) * strides[i] >= input[i] + pads[i] {
                o -= 1;
            }
            o
        } else {
            span / strides[i] + 1
        };
    }
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
        input: input.to_vec(),
        output,
    })
}

pub fn input_info<'a>(n: &NodeProto, ins: &[Option<&'a ValInfo>], i: usize) -> Result<&'a ValInfo> {
    ins.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| shape_err(n, format!("input {i} has no known shape")))
}

/// Output = shape of input 0 (unary ops).
pub fn same_as_first(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    Ok(vec![ValInfo::float(x.shape.clone())])
}

/// Output = numpy broadcast of all present inputs.
pub fn broadcast_all(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let first = input_info(n, ins, 0)?;
    let mut shape = first.shape.clone();
    for i in ins.iter().flatten() {
        shape = broadcast(&shape, &i.shape).ok_or_else(|| shape_err(n, "operand shapes do not broadcast"))?;
    }
    Ok(vec![ValInfo {
        shape,
        elem: first.elem,
        ints: None,
    }])
}

/// The output name of a single-output node, for base names of gradient values.
pub fn out0(n: &NodeProto) -> &str {
    n.output.first().map(String::as_str).unwrap_or("")
}

/// `a` where `cond`, else 0, as a · float(cond): on ORT's CPU provider Greater/Equal + Cast + Mul runs about 3×
/// faster than `Where(cond, a, 0)`. The two differ only where `a` is not finite.
pub fn mask_by_mul(cx: &mut GradCx, cond: &str, a: &str) -> String {
    let f = cx.op(
        "Cast",
        "g_maskf",
        &[cond],
        vec![("to", Attr::Int(DataType::Float as i64))],
    );
    cx.mul(a, &f)
}
