//! Helpers shared by gradient rules. The window geometry is the op table's (one parser serves shape inference
//! and the Conv/pool rules).

use crate::autodiff::cx::GradCx;
use crate::ir::build::Attr;
use crate::proto::NodeProto;
use crate::proto::tensor_proto::DataType;

pub use crate::ops::common::{Window, window};

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
