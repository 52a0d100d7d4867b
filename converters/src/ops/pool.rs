//! Windowed and global pooling.

use crate::autodiff::ops::{average_pool, global_average_pool, max_pool};
use crate::ir::attr::NodeExt;
use crate::ops::common::{Window, input_info, window};
use crate::ops::error::{Result, shape_err};
use crate::ops::spec::{Affine, DataInputs, OpSpec, Walk};
use crate::proto::NodeProto;
use crate::shapes::info::{INT64, ValInfo};

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("MaxPool", infer_window, Affine::Gated)
        .grad(max_pool::GRAD)
        .walk(Walk::Through(DataInputs::All))
        .downsamples(),
    OpSpec::new("AveragePool", infer_window, Affine::Yes)
        .grad(average_pool::GRAD)
        .walk(Walk::Through(DataInputs::All))
        .downsamples(),
    OpSpec::new("GlobalAveragePool", infer_global, Affine::Yes)
        .grad(global_average_pool::GRAD)
        .global(),
    OpSpec::new("GlobalMaxPool", infer_global, Affine::No).global(),
];

/// The window of a MaxPool or AveragePool over input `xs` [N, C, spatial…], ceil_mode included.
pub fn pool_window(n: &NodeProto, xs: &[i64]) -> Result<Window> {
    let kernel = n
        .get_ints("kernel_shape")?
        .ok_or_else(|| shape_err(n, "missing kernel_shape"))?;
    if xs.len() < 3 {
        return Err(shape_err(n, "needs spatial dims"));
    }
    let ceil = n.get_i("ceil_mode")?.unwrap_or(0) != 0;
    window(n, &xs[2..], kernel, ceil)
}

fn infer_window(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let w = pool_window(n, &x.shape)?;
    let mut shape = x.shape[..2].to_vec();
    shape.extend(&w.output);
    let mut outs = vec![ValInfo::float(shape.clone())];
    if n.output.len() > 1 {
        outs.push(ValInfo {
            shape,
            elem: INT64,
            ints: None,
        });
    }
    Ok(outs)
}

fn infer_global(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    if x.shape.len() < 3 {
        return Err(shape_err(n, "needs spatial dims"));
    }
    let mut shape = x.shape[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, x.shape.len() - 2));
    Ok(vec![ValInfo::float(shape)])
}
