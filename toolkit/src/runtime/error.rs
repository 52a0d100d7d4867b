//! Errors of the runtime layer. Each variant names the model file or input it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{}: cannot load the model: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("ONNX Runtime library not found at {}: {hint}", path.display())]
    MissingLibrary { path: PathBuf, hint: String },
    #[error("ONNX Runtime could not be initialised from {}: {reason}", path.display())]
    Init { path: PathBuf, reason: String },
    #[error("input '{name}': expected {expected}, got {got}")]
    BadFeed {
        name: String,
        expected: String,
        got: String,
    },
    #[error("{model}: no output named '{name}' (outputs: {available})")]
    UnknownOutput {
        model: String,
        name: String,
        available: String,
    },
    #[error("{model}: output '{name}' has element type {elem}, which cannot be read as {wanted}")]
    OutputType {
        model: String,
        name: String,
        elem: String,
        wanted: String,
    },
    #[error("{model}: run failed: {reason}")]
    Run { model: String, reason: String },
    #[error("{}: cannot read the ONNX Runtime profile: {reason}", path.display())]
    Profile { path: PathBuf, reason: String },
    #[error("CUDA: {reason}")]
    Cuda { reason: String },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
