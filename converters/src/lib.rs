//! Pure ONNX graph → graph tooling for `ratio`: one IR shared by every crate, validation, activation-slot
//! detection, N:M placement policies and conversion. Nothing here links ONNX Runtime, so it builds and tests fast.

pub mod act;
pub mod autodiff;
pub mod convert;
pub mod error;
pub mod ir;
pub mod ops;
pub mod passes;
pub mod plan;
pub mod policy;
pub mod proto;
pub mod shapes;
pub mod slots;
pub mod validate;

pub use error::IrError;
pub use ir::Model;
