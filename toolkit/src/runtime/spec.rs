//! Input/output metadata of a session and the typed feeds checked against it.

use std::fmt;

use ndarray::ArrayViewD;
use serde::Serialize;

/// Element type of a tensor, as ONNX Runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ElemType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I8,
    U8,
    Bool,
    /// Anything else (strings, sequences, maps, …), by name.
    Other(String),
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElemType::F32 => f.write_str("f32"),
            ElemType::F16 => f.write_str("f16"),
            ElemType::BF16 => f.write_str("bf16"),
            ElemType::F64 => f.write_str("f64"),
            ElemType::I64 => f.write_str("i64"),
            ElemType::I32 => f.write_str("i32"),
            ElemType::I8 => f.write_str("i8"),
            ElemType::U8 => f.write_str("u8"),
            ElemType::Bool => f.write_str("bool"),
            ElemType::Other(s) => f.write_str(s),
        }
    }
}

/// Name, element type and shape of a model input or output; `None` marks a symbolic (dynamic) dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub elem: ElemType,
    pub dims: Vec<Option<i64>>,
}

impl TensorSpec {
    /// The shape with every symbolic dimension set to `fill` (e.g. the batch size).
    pub fn concrete_shape(&self, fill: usize) -> Vec<usize> {
        self.dims
            .iter()
            .map(|d| d.map(|d| d as usize).unwrap_or(fill))
            .collect()
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.name, self.elem, fmt_dims(&self.dims))
    }
}

/// `[?,1,28,28]`
pub fn fmt_dims(dims: &[Option<i64>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map(|d| d.to_string()).unwrap_or_else(|| "?".into()))
        .collect();
    format!("[{}]", parts.join(","))
}

/// A borrowed input tensor.
#[derive(Debug, Clone)]
pub enum Feed<'a> {
    F32(ArrayViewD<'a, f32>),
    F16(ArrayViewD<'a, half::f16>),
    I64(ArrayViewD<'a, i64>),
}

impl Feed<'_> {
    pub fn elem(&self) -> ElemType {
        match self {
            Feed::F32(_) => ElemType::F32,
            Feed::F16(_) => ElemType::F16,
            Feed::I64(_) => ElemType::I64,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Feed::F32(a) => a.shape(),
            Feed::F16(a) => a.shape(),
            Feed::I64(a) => a.shape(),
        }
    }
}

impl<'a> From<ArrayViewD<'a, f32>> for Feed<'a> {
    fn from(a: ArrayViewD<'a, f32>) -> Self {
        Feed::F32(a)
    }
}

impl<'a> From<ArrayViewD<'a, i64>> for Feed<'a> {
    fn from(a: ArrayViewD<'a, i64>) -> Self {
        Feed::I64(a)
    }
}

/// Check `feeds` against the model's inputs: every input fed exactly once, known names, same element type, same
/// rank, and equal static dimensions. Returns a message per problem listing what was expected against what was
/// given; `Ok` when all match.
pub fn check_feeds(inputs: &[TensorSpec], feeds: &[(&str, Feed<'_>)]) -> Result<(), super::RuntimeError> {
    check_feeds_except(inputs, feeds, &[])
}

/// [`check_feeds`] for a run where the inputs named in `bound` already have values (an IoBinding's state): they
/// must not be fed, and every other input must.
pub fn check_feeds_except(
    inputs: &[TensorSpec],
    feeds: &[(&str, Feed<'_>)],
    bound: &[&str],
) -> Result<(), super::RuntimeError> {
    use super::RuntimeError::BadFeed;
    if let Some((name, _)) = feeds.iter().find(|(n, _)| bound.contains(n)) {
        return Err(BadFeed {
            name: name.to_string(),
            expected: "no feed (the input is bound to session-resident state)".into(),
            got: "a feed".into(),
        });
    }
    let expected_names = || inputs.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    for (i, (name, _)) in feeds.iter().enumerate() {
        if feeds[..i].iter().any(|(n, _)| n == name) {
            return Err(BadFeed {
                name: name.to_string(),
                expected: "each input fed once".into(),
                got: "it twice".into(),
            });
        }
    }
    for spec in inputs.iter().filter(|s| !bound.contains(&s.name.as_str())) {
        if !feeds.iter().any(|(n, _)| *n == spec.name) {
            let given: Vec<&str> = feeds.iter().map(|(n, _)| *n).collect();
            return Err(BadFeed {
                name: spec.name.clone(),
                expected: format!("a value for it ({spec})"),
                got: format!("no feed (given: {})", given.join(", ")),
            });
        }
    }
    for (name, feed) in feeds {
        let Some(spec) = inputs.iter().find(|s| s.name == *name) else {
            return Err(BadFeed {
                name: name.to_string(),
                expected: format!("one of the model inputs: {}", expected_names()),
                got: "an unknown input name".into(),
            });
        };
        let shape = feed.shape();
        let got = || format!("{} {:?}", feed.elem(), shape);
        if feed.elem() != spec.elem {
            return Err(BadFeed {
                name: name.to_string(),
                expected: format!("{} {}", spec.elem, fmt_dims(&spec.dims)),
                got: got(),
            });
        }
        let dims_ok = shape.len() == spec.dims.len()
            && spec
                .dims
                .iter()
                .zip(shape)
                .all(|(d, &s)| d.is_none_or(|d| d == s as i64));
        if !dims_ok {
            return Err(BadFeed {
                name: name.to_string(),
                expected: format!("{} {}", spec.elem, fmt_dims(&spec.dims)),
                got: got(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeError;
    use ndarray::ArrayD;

    fn spec() -> Vec<TensorSpec> {
        vec![TensorSpec {
            name: "input".into(),
            elem: ElemType::F32,
            dims: vec![None, Some(1), Some(28), Some(28)],
        }]
    }

    #[test]
    fn symbolic_batch_accepts_any_size() {
        let x = ArrayD::<f32>::zeros(vec![5, 1, 28, 28]);
        assert!(check_feeds(&spec(), &[("input", Feed::F32(x.view()))]).is_ok());
    }

    #[test]
    fn static_dim_mismatch_lists_expected_and_given() {
        let x = ArrayD::<f32>::zeros(vec![1, 3, 28, 28]);
        let e = check_feeds(&spec(), &[("input", Feed::F32(x.view()))]).unwrap_err();
        let RuntimeError::BadFeed { name, expected, got } = &e else {
            panic!("{e}")
        };
        assert_eq!(name, "input");
        assert_eq!(expected, "f32 [?,1,28,28]");
        assert_eq!(got, "f32 [1, 3, 28, 28]");
    }

    #[test]
    fn wrong_dtype_rank_name_and_missing_feed() {
        let i = ArrayD::<i64>::zeros(vec![1, 1, 28, 28]);
        let e = check_feeds(&spec(), &[("input", Feed::I64(i.view()))]).unwrap_err();
        assert!(e.to_string().contains("got i64"), "{e}");
        let x = ArrayD::<f32>::zeros(vec![1, 28, 28]);
        let e = check_feeds(&spec(), &[("input", Feed::F32(x.view()))]).unwrap_err();
        assert!(e.to_string().contains("[1, 28, 28]"), "{e}");
        let x = ArrayD::<f32>::zeros(vec![1, 1, 28, 28]);
        let e = check_feeds(
            &spec(),
            &[("input", Feed::F32(x.view())), ("extra", Feed::F32(x.view()))],
        )
        .unwrap_err();
        assert!(e.to_string().contains("input 'extra'"), "{e}");
        let e = check_feeds(&spec(), &[]).unwrap_err();
        assert!(e.to_string().contains("no feed"), "{e}");
    }
}
