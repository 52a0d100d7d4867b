//! The editable ONNX model shared by every crate of `ratio`.
//!
//! A [`Model`] is the prost `ModelProto` plus where it came from. Tensors stay `bytes::Bytes` slices of the file
//! buffer (zero-copy), external data is read lazily, and a model saved unchanged is byte-identical to its source.

pub mod attr;
pub mod build;
pub mod edit;
pub mod expose;
pub mod external;
pub mod index;
pub mod model;
pub mod names;
pub mod stream;
pub mod tensor;

pub use edit::Patch;
pub use index::GraphIndex;
pub use model::Model;
