//! Prost types generated from the vendored `onnx-ml.proto` (onnx 1.23.2, IR 14). Regenerate with
//! `cargo xtask codegen`; `bytes` fields are `bytes::Bytes` so decoding from a `Bytes` buffer is zero-copy.
#![allow(clippy::all, missing_docs, rustdoc::all)]
include!("onnx.rs");
