//! Attribute parsing shared by Conv and the pools, and the shape rules shared by elementwise ops.

use crate::ir::attr::NodeExt;
use crate::ops::error::{Result, shape_err, unsupported};
use crate::proto::NodeProto;
use crate::shapes::info::{BOOL, ValInfo, broadcast};

/// Integer tensors larger than this are not folded (shape arithmetic is a handful of values).
pub const MAX_FOLD: usize = 4096;

pub fn input_info<'a>(n: &NodeProto, ins: &[Option<&'a ValInfo>], i: usize) -> Result<&'a ValInfo> {
    ins.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| shape_err(n, format!("input {i} has no known shape")))
}

/// Output = shape and type of input 0 (unary float ops).
pub fn same_as_first(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    Ok(vec![ValInfo {
        shape: x.shape.clone(),
        elem: x.elem,
        ints: None,
    }])
}

/// Output = input 0, folded values included (Identity, inference-mode Dropout).
pub fn identity(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let mut out = vec![x.clone()];
    if n.output.len() > 1 {
        out.push(ValInfo {
            shape: x.shape.clone(),
            elem: BOOL,
            ints: None,
        });
    }
    Ok(out)
}

/// The broadcast shape of every present input.
fn broadcast_shape(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<i64>> {
    let mut shape = input_info(n, ins, 0)?.shape.clone();
    for i in 0..n.input.len() {
        let v = input_info(n, ins, i)?;
        shape = broadcast(&shape, &v.shape).ok_or_else(|| shape_err(n, "operand shapes do not broadcast"))?;
    }
    Ok(shape)
}

/// Position in a broadcast operand of shape `from` for flat position `flat` of the output `to`.
fn source_index(to: &[i64], from: &[i64], mut flat: i64) -> usize {
    let mut idx = 0;
    let mut stride = 1;
    for k in (0..to.len()).rev() {
        let coord = flat % to[k];
        flat /= to[k];
        if let Some(j) = (k + from.len()).checked_sub(to.len()) {
            if from[j] != 1 {
                idx += coord * stride;
            }
            stride *= from[j];
        }
    }
    idx as usize
}

/// Elementwise values of `ins` broadcast to `shape`, combined by `f`; `None` unless every input is folded.
fn fold(shape: &[i64], ins: &[&ValInfo], f: impl Fn(&[i64]) -> Option<i64>) -> Option<Vec<i64>> {
    let total: i64 = shape.iter().product();
    if total as usize > MAX_FOLD {
        return None;
    }
    let vals: Vec<&Vec<i64>> = ins.iter().map(|v| v.ints.as_ref()).collect::<Option<_>>()?;
    let mut args = vec![0; ins.len()];
    (0..total)
        .map(|p| {
            for (k, (v, info)) in vals.iter().zip(ins).enumerate() {
                args[k] = *v.get(source_index(shape, &info.shape, p))?;
            }
            f(&args)
        })
        .collect()
}

/// A numpy-broadcasting op whose output type is input 0's; integer operands fold through `f`.
pub fn elementwise(n: &NodeProto, ins: &[Option<&ValInfo>], f: impl Fn(&[i64]) -> Option<i64>) -> Result<Vec<ValInfo>> {
    let shape = broadcast_shape(n, ins)?;
    let present: Vec<&ValInfo> = ins.iter().flatten().copied().collect();
    let elem = input_info(n, ins, 0)?.elem;
    let ints = if present.len() == n.input.len() {
        fold(&shape, &present, f)
    } else {
        None
    };
    Ok(vec![ValInfo { shape, elem, ints }])
}

/// A broadcasting comparison: boolean output, folded to 0/1 for integer operands.
pub fn comparison(n: &NodeProto, ins: &[Option<&ValInfo>], f: impl Fn(i64, i64) -> bool) -> Result<Vec<ValInfo>> {
    let mut out = elementwise(n, ins, |a| Some(f(a[0], *a.get(1)?) as i64))?;
    out[0].elem = BOOL;
    Ok(out)
}

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
    if strides.iter().chain(&dilations).any(|&v| v < 1) {
        return Err(shape_err(n, "strides and dilations must be positive"));
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
