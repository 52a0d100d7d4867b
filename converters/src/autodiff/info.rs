//! The value facts gradient rules read (static shape, element type, folded integers) come from the one shape
//! inference in [`crate::shapes`].

pub use crate::shapes::info::{BOOL, FLOAT, INT64, ValInfo, broadcast, norm_axis};
