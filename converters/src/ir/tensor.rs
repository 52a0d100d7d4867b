//! Reading and writing tensor payloads as `f32` (and `i64` for shape-like constants).

use bytes::Bytes;

use crate::error::{IrError, Result};
use crate::proto::TensorProto;
use crate::proto::tensor_proto::DataType;

pub fn dims(t: &TensorProto) -> &[i64] {
    &t.dims
}

pub fn numel(dims: &[i64]) -> usize {
    dims.iter().map(|&d| d.max(0) as usize).product()
}

fn err(t: &TensorProto, reason: impl Into<String>) -> IrError {
    IrError::Tensor {
        tensor: t.name.clone().unwrap_or_default(),
        reason: reason.into(),
    }
}

fn check_len(t: &TensorProto, got: usize, width: usize) -> Result<()> {
    let want = numel(&t.dims) * width;
    if got != want {
        return Err(err(
            t,
            format!("payload has {got} bytes, dims {:?} need {want}", t.dims),
        ));
    }
    Ok(())
}

/// Values of a float-like or integer tensor as `f32`. `raw` is the tensor's bytes when it keeps them outside the
/// typed fields (inline raw_data or external data); see `Model::tensor_bytes`.
pub fn to_f32(t: &TensorProto, raw: Option<&Bytes>) -> Result<Vec<f32>> {
    let dt = DataType::try_from(t.data_type.unwrap_or(0)).unwrap_or(DataType::Undefined);
    let raw = raw.or(t.raw_data.as_ref());
    if let Some(raw) = raw {
        let le4 = |c: &[u8]| [c[0], c[1], c[2], c[3]];
        return Ok(match dt {
            DataType::Float => {
                check_len(t, raw.len(), 4)?;
                raw.chunks_exact(4).map(|c| f32::from_le_bytes(le4(c))).collect()
            }
            DataType::Double => {
                check_len(t, raw.len(), 8)?;
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect()
            }
            DataType::Float16 => {
                check_len(t, raw.len(), 2)?;
                raw.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect()
            }
            DataType::Bfloat16 => {
                check_len(t, raw.len(), 2)?;
                raw.chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect()
            }
            DataType::Int64 => {
                check_len(t, raw.len(), 8)?;
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect()
            }
            DataType::Int32 => {
                check_len(t, raw.len(), 4)?;
                raw.chunks_exact(4).map(|c| i32::from_le_bytes(le4(c)) as f32).collect()
            }
            DataType::Uint8 | DataType::Bool => {
                check_len(t, raw.len(), 1)?;
                raw.iter().map(|&b| b as f32).collect()
            }
            DataType::Int8 => {
                check_len(t, raw.len(), 1)?;
                raw.iter().map(|&b| b as i8 as f32).collect()
            }
            other => return Err(err(t, format!("unsupported data type {other:?}"))),
        });
    }
    let v: Vec<f32> = match dt {
        DataType::Float => t.float_data.clone(),
        DataType::Double => t.double_data.iter().map(|&x| x as f32).collect(),
        DataType::Int64 => t.int64_data.iter().map(|&x| x as f32).collect(),
        DataType::Int32 | DataType::Int8 | DataType::Uint8 | DataType::Int16 | DataType::Uint16 | DataType::Bool => {
            t.int32_data.iter().map(|&x| x as f32).collect()
        }
        // float16/bfloat16 typed storage puts the bit pattern in int32_data.
        DataType::Float16 => t
            .int32_data
            .iter()
            .map(|&x| half::f16::from_bits(x as u16).to_f32())
            .collect(),
        DataType::Bfloat16 => t
            .int32_data
            .iter()
            .map(|&x| half::bf16::from_bits(x as u16).to_f32())
            .collect(),
        other => return Err(err(t, format!("unsupported data type {other:?}"))),
    };
    if v.len() != numel(&t.dims) {
        return Err(err(
            t,
            format!("has {} values, dims {:?} need {}", v.len(), t.dims, numel(&t.dims)),
        ));
    }
    Ok(v)
}

/// Values of an integer tensor as `i64` (shapes, axes, pads).
pub fn to_i64(t: &TensorProto, raw: Option<&Bytes>) -> Result<Vec<i64>> {
    let dt = DataType::try_from(t.data_type.unwrap_or(0)).unwrap_or(DataType::Undefined);
    let raw = raw.or(t.raw_data.as_ref());
    match (dt, raw) {
        (DataType::Int64, Some(raw)) => {
            check_len(t, raw.len(), 8)?;
            Ok(raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect())
        }
        (DataType::Int64, None) => Ok(t.int64_data.clone()),
        (DataType::Int32, Some(raw)) => {
            check_len(t, raw.len(), 4)?;
            Ok(raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect())
        }
        (DataType::Int32, None) => Ok(t.int32_data.iter().map(|&x| x as i64).collect()),
        _ => Ok(to_f32(t, raw)?.into_iter().map(|x| x as i64).collect()),
    }
}

/// A float32 tensor stored as raw little-endian bytes. One pre-sized buffer filled in place: a per-value push
/// loop dominates building a 100 MB model in debug builds.
pub fn from_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let mut raw = vec![0u8; values.len() * 4];
    for (dst, v) in raw.chunks_exact_mut(4).zip(values) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(Bytes::from(raw)),
        ..Default::default()
    }
}

pub fn from_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 8);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Int64 as i32),
        raw_data: Some(Bytes::from(raw)),
        ..Default::default()
    }
}
