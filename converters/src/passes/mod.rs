//! Whole-graph rewrites built on [`Patch`](crate::ir::Patch): each pass plans from a read-only look at the graph
//! and applies one atomic patch, so a pass that fails leaves the graph as it was.
//!
//! - [`fold_bn`]: fold inference BatchNormalization into the Conv before it (deployment form);
//! - [`bn_insert`]: the reverse for training, identity BatchNormalization after each Conv;
//! - [`batch_stats`]: BatchNormalization with batch statistics exposed, for re-estimating running statistics;
//! - [`set_inputs`]: new weights, biases or statistics for nodes (what calibration writes);
//! - [`extract`]: the part of a graph some values need, with those values as outputs;
//! - [`nchwc`]: convolutions with live weights lowered to ONNX Runtime's blocked CPU kernels (train steps).

pub mod batch_stats;
pub mod bn_insert;
pub mod extract;
pub mod fold_bn;
pub mod leaky_ensemble;
pub mod nchwc;
pub mod set_inputs;
#[cfg(test)]
mod tests;

use crate::error::IrError;

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{pass}: node '{node}': {reason}")]
    Node {
        pass: &'static str,
        node: String,
        reason: String,
    },
    #[error(transparent)]
    Ir(#[from] IrError),
}
