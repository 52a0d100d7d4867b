//! Gemm and MatMul (numpy semantics: batch dims broadcast, a 1-D operand is a vector).

use crate::autodiff::ops::{gemm, matmul};
use crate::ir::attr::NodeExt;
use crate::ops::common::input_info;
use crate::ops::error::{Result, shape_err};
use crate::ops::spec::{Affine, OpSpec, Walk};
use crate::proto::NodeProto;
use crate::shapes::info::{ValInfo, broadcast};

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("Gemm", infer_gemm, Affine::PerOperand)
        .grad(gemm::GRAD)
        .params(&[1, 2])
        .walk(Walk::Fc)
        .macs(linear_macs),
    OpSpec::new("MatMul", infer_matmul, Affine::PerOperand)
        .grad(matmul::GRAD)
        .params(&[0, 1])
        .walk(Walk::Fc)
        .macs(linear_macs),
];

fn infer_gemm(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let a = input_info(n, ins, 0)?;
    let b = input_info(n, ins, 1)?;
    if a.shape.len() != 2 || b.shape.len() != 2 {
        return Err(shape_err(n, "Gemm needs 2-D operands"));
    }
    let ta = n.get_i("transA")?.unwrap_or(0) != 0;
    let tb = n.get_i("transB")?.unwrap_or(0) != 0;
    let (m, k) = if ta {
        (a.shape[1], a.shape[0])
    } else {
        (a.shape[0], a.shape[1])
    };
    let (k2, nn) = if tb {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    if k != k2 {
        return Err(shape_err(
            n,
            format!("inner dims differ: {:?} vs {:?}", a.shape, b.shape),
        ));
    }
    Ok(vec![ValInfo::float(vec![m, nn])])
}

/// The output shape of `a @ b` under numpy's rules: a 1-D `a` is a row vector whose axis is dropped after, a
/// 1-D `b` a column vector likewise.
pub fn matmul_shape(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let a2: Vec<i64> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<i64> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    if a2[ra - 1] != b2[rb - 2] {
        return None;
    }
    let mut shape = broadcast(&a2[..ra - 2], &b2[..rb - 2])?;
    if a.len() > 1 {
        shape.push(a2[ra - 2]);
    }
    if b.len() > 1 {
        shape.push(b2[rb - 1]);
    }
    Some(shape)
}

fn infer_matmul(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let (a, b) = (&input_info(n, ins, 0)?.shape, &input_info(n, ins, 1)?.shape);
    let shape = matmul_shape(a, b).ok_or_else(|| shape_err(n, format!("operands {a:?} and {b:?} do not multiply")))?;
    Ok(vec![ValInfo::float(shape)])
}

/// Each output element is a K-long dot product.
fn linear_macs(n: &NodeProto, ins: &[Option<&ValInfo>], y: &[i64]) -> u64 {
    ins.first().copied().flatten().map_or(0, |a| {
        let k = if n.op() == "Gemm" && n.get_i("transA").ok().flatten() == Some(1) {
            a.shape[0]
        } else {
            *a.shape.last().unwrap_or(&0)
        };
        (y.iter().product::<i64>() * k) as u64
    })
}
