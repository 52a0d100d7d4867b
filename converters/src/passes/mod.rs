//! Whole-graph rewrites built on [`Patch`](crate::ir::Patch): each pass plans from a read-only look at the graph
//! and applies one atomic patch, so a pass that fails leaves the graph as it was.
//!
//! - [`fold_bn`]: fold inference BatchNormalization into the Conv before it (deployment form).

pub mod fold_bn;

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
