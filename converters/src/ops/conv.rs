//! Conv and ConvTranspose (any spatial rank, strides, explicit/asymmetric/auto pads, dilations, groups).

use crate::autodiff::ops::conv;
use crate::ir::attr::NodeExt;
use crate::ops::common::{input_info, window};
use crate::ops::error::{Result, shape_err};
use crate::ops::spec::{Affine, OpSpec, Walk};
use crate::proto::NodeProto;
use crate::shapes::ValInfo;

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("Conv", infer_conv, Affine::Yes)
        .grad(conv::GRAD)
        .params(&[1, 2])
        .walk(Walk::Conv)
        .downsamples()
        .macs(conv_macs),
    OpSpec::new("ConvTranspose", infer_conv_transpose, Affine::Yes)
        .params(&[1, 2])
        .walk(Walk::Conv)
        .macs(conv_transpose_macs),
];

fn infer_conv(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let w = input_info(n, ins, 1)?;
    if x.shape.len() < 3 || w.shape.len() != x.shape.len() {
        return Err(shape_err(
            n,
            format!("input {:?} and weight {:?} ranks differ", x.shape, w.shape),
        ));
    }
    let group = n.get_i("group")?.unwrap_or(1);
    if group < 1 || x.shape[1] != w.shape[1] * group || w.shape[0] % group != 0 {
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

/// out = stride·(in − 1) + output_padding + dilation·(k − 1) + 1 − pads, per spatial axis; C_out = W[1]·group.
fn infer_conv_transpose(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let w = input_info(n, ins, 1)?;
    let sp = x.shape.len().saturating_sub(2);
    if x.shape.len() < 3 || w.shape.len() != x.shape.len() {
        return Err(shape_err(n, "input and weight ranks differ"));
    }
    if n.get_ints("output_shape")?.is_some_and(|s| !s.is_empty()) {
        return Err(shape_err(n, "ConvTranspose with an explicit output_shape"));
    }
    let group = n.get_i("group")?.unwrap_or(1);
    let get = |name: &str, default: i64, len: usize| -> Result<Vec<i64>> {
        let v = n
            .get_ints(name)?
            .filter(|v| !v.is_empty())
            .unwrap_or(vec![default; len]);
        if v.len() != len {
            return Err(shape_err(n, format!("'{name}' does not match {sp} spatial dims")));
        }
        Ok(v)
    };
    let (strides, dil, pads, opad) = (
        get("strides", 1, sp)?,
        get("dilations", 1, sp)?,
        get("pads", 0, 2 * sp)?,
        get("output_padding", 0, sp)?,
    );
    let mut shape = vec![x.shape[0], w.shape[1] * group];
    for k in 0..sp {
        let ek = dil[k] * (w.shape[k + 2] - 1) + 1;
        shape.push(strides[k] * (x.shape[k + 2] - 1) + opad[k] + ek - pads[k] - pads[k + sp]);
    }
    Ok(vec![ValInfo::float(shape)])
}

/// Each output element costs C_in/g · k_h · k_w MACs.
fn conv_macs(_: &NodeProto, ins: &[Option<&ValInfo>], y: &[i64]) -> u64 {
    ins.get(1).copied().flatten().map_or(0, |w| {
        let per_out: i64 = w.shape[1..].iter().product();
        (y.iter().product::<i64>() * per_out) as u64
    })
}

/// Each input element is scattered through C_out/g · k_h · k_w weights.
fn conv_transpose_macs(_: &NodeProto, ins: &[Option<&ValInfo>], _: &[i64]) -> u64 {
    match (ins.first().copied().flatten(), ins.get(1).copied().flatten()) {
        (Some(x), Some(w)) => (x.shape.iter().product::<i64>() * w.shape[1..].iter().product::<i64>()) as u64,
        _ => 0,
    }
}
