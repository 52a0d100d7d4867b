//! Errors of the IR layer. Every variant names the file, node or tensor it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IrError {
    // Not a `#[source]`: the message already carries the OS error, so the cause chain would repeat it.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: not a valid ONNX model ({reason})")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: external data of tensor '{tensor}': {reason}")]
    ExternalData {
        path: PathBuf,
        tensor: String,
        reason: String,
    },
    #[error("node '{node}' ({op_type}), attribute '{attr}': {reason}")]
    Attr {
        node: String,
        op_type: String,
        attr: String,
        reason: String,
    },
    #[error("tensor '{tensor}': {reason}")]
    Tensor { tensor: String, reason: String },
    #[error("invalid graph: {0}")]
    Invalid(String),
    #[error("edit rejected: {0}")]
    Edit(String),
}

pub type Result<T, E = IrError> = std::result::Result<T, E>;
