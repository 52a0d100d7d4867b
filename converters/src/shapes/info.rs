//! What shape inference knows about each value at a fixed batch size: static shape, element type, and (for small
//! integer tensors such as `Shape` chains) the folded values, so `Reshape` targets are known at build time.

use crate::proto::tensor_proto::DataType;

pub const FLOAT: i32 = DataType::Float as i32;
pub const INT64: i32 = DataType::Int64 as i32;
pub const BOOL: i32 = DataType::Bool as i32;

/// Element types that carry gradients.
pub fn is_float(elem: i32) -> bool {
    [DataType::Float, DataType::Double, DataType::Float16, DataType::Bfloat16]
        .iter()
        .any(|&d| d as i32 == elem)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValInfo {
    pub shape: Vec<i64>,
    pub elem: i32,
    /// Folded values of an integer tensor, when known at build time.
    pub ints: Option<Vec<i64>>,
}

impl ValInfo {
    pub fn float(shape: Vec<i64>) -> Self {
        ValInfo {
            shape,
            elem: FLOAT,
            ints: None,
        }
    }

    pub fn ints(shape: Vec<i64>, values: Vec<i64>) -> Self {
        ValInfo {
            shape,
            elem: INT64,
            ints: Some(values),
        }
    }

    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
}

/// Numpy-style broadcast of two static shapes.
pub fn broadcast(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Resolve a possibly negative axis against a rank.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
