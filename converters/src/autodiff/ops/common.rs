//! Helpers shared by gradient rules. The window geometry is the op table's (one parser serves shape inference
//! and the Conv/pool rules).

use crate::proto::NodeProto;

pub use crate::ops::common::{Window, window};

/// The output name of a single-output node, for base names of gradient values.
pub fn out0(n: &NodeProto) -> &str {
    n.output.first().map(String::as_str).unwrap_or("")
}
