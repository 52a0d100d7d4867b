//! Constants and shape queries: the sources of the integer bookkeeping exporters emit around Reshape. With the
//! batch size fixed they fold to constants at build time, and they carry no gradient.

use crate::ir::attr::NodeExt;
use crate::ir::tensor;
use crate::ops::common::{MAX_FOLD, input_info};
use crate::ops::error::{Result, shape_err, unsupported};
use crate::ops::spec::{Affine, OpSpec};
use crate::proto::NodeProto;
use crate::shapes::info::{FLOAT, ValInfo};

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("Shape", infer_shape, Affine::Yes).no_grad().shape_only(),
    OpSpec::new("Size", infer_size, Affine::Yes).no_grad().shape_only(),
    OpSpec::new("Constant", infer_constant, Affine::Yes).no_grad(),
    OpSpec::new("ConstantOfShape", infer_constant_of_shape, Affine::Yes).no_grad(),
    OpSpec::new("Range", infer_range, Affine::Yes).no_grad(),
];

fn infer_shape(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = x.shape.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(n.get_i("start")?.unwrap_or(0));
    let end = clamp(n.get_i("end")?.unwrap_or(r));
    let vals = x.shape[start..end.max(start)].to_vec();
    Ok(vec![ValInfo::ints(vec![vals.len() as i64], vals)])
}

fn infer_size(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    Ok(vec![ValInfo::ints(vec![], vec![x.numel()])])
}

fn infer_constant(n: &NodeProto, _ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    if let Some(t) = n.get_t("value")? {
        let elem = t.data_type.unwrap_or(FLOAT);
        let ints = if elem == FLOAT || tensor::numel(&t.dims) > MAX_FOLD {
            None
        } else {
            tensor::to_i64(t, None).ok()
        };
        return Ok(vec![ValInfo {
            shape: t.dims.clone(),
            elem,
            ints,
        }]);
    }
    if let Some(i) = n.get_i("value_int")? {
        return Ok(vec![ValInfo::ints(vec![], vec![i])]);
    }
    if let Some(v) = n.get_ints("value_ints")?.filter(|v| !v.is_empty()) {
        return Ok(vec![ValInfo::ints(vec![v.len() as i64], v)]);
    }
    if n.get_f("value_float")?.is_some() {
        return Ok(vec![ValInfo::float(vec![])]);
    }
    if let Some(v) = n.get_floats("value_floats")?.filter(|v| !v.is_empty()) {
        return Ok(vec![ValInfo::float(vec![v.len() as i64])]);
    }
    Err(unsupported(n, "Constant without a tensor, int or float value"))
}

fn infer_constant_of_shape(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let shape = input_info(n, ins, 0)?
        .ints
        .clone()
        .ok_or_else(|| unsupported(n, "shape is not a build-time constant"))?;
    let value = n.get_t("value")?;
    let elem = value.and_then(|t| t.data_type).unwrap_or(FLOAT);
    let total = shape.iter().product::<i64>() as usize;
    let ints = match value {
        Some(t) if elem != FLOAT && total <= MAX_FOLD => tensor::to_i64(t, None)
            .ok()
            .and_then(|v| v.first().copied())
            .map(|v| vec![v; total]),
        _ => None,
    };
    Ok(vec![ValInfo { shape, elem, ints }])
}

fn infer_range(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let scalar = |i: usize| -> Result<i64> {
        input_info(n, ins, i)?
            .ints
            .as_ref()
            .and_then(|v| v.first().copied())
            .ok_or_else(|| unsupported(n, "Range bounds are not build-time constants"))
    };
    let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
    if delta == 0 {
        return Err(shape_err(n, "Range with delta 0"));
    }
    let span = limit
        .checked_sub(start)
        .and_then(|s| s.checked_add(delta - delta.signum()))
        .ok_or_else(|| shape_err(n, "Range bounds overflow"))?;
    let count = (span / delta).max(0);
    let vals: Vec<i64> = if count as usize <= MAX_FOLD {
        (0..count).map(|i| start + i * delta).collect()
    } else {
        Vec::new()
    };
    Ok(vec![ValInfo {
        shape: vec![count],
        elem: input_info(n, ins, 0)?.elem,
        ints: (count as usize <= MAX_FOLD).then_some(vals),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_counts_like_numpy() {
        let n = crate::ir::build::node("Range", "r", &["a", "b", "c"], &["y"], vec![]);
        let s = |v| ValInfo::ints(vec![], vec![v]);
        let (a, b, c) = (s(1), s(8), s(3));
        let out = infer_range(&n, &[Some(&a), Some(&b), Some(&c)]).unwrap();
        assert_eq!(out[0].ints.as_deref(), Some(&[1, 4, 7][..]));
        let (a, b, c) = (s(5), s(0), s(-2));
        let out = infer_range(&n, &[Some(&a), Some(&b), Some(&c)]).unwrap();
        assert_eq!(out[0].ints.as_deref(), Some(&[5, 3, 1][..]));
    }
}
