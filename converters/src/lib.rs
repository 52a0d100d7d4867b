//! Pure ONNX graph → graph tooling for `ratio`: one IR shared by every crate, validation, N:M conversion and
//! autodiff. Nothing here links ONNX Runtime, so it builds and tests fast.

pub mod autodiff;
pub mod error;
pub mod ir;
pub mod proto;
pub mod validate;

pub use error::IrError;
pub use ir::Model;
