//! Errors of gradient-graph generation. Every variant names the node (and op) it is about.

use crate::error::IrError;
use crate::ops::OpError;

#[derive(Debug, thiserror::Error)]
pub enum GradError {
    #[error("the model uses ops with no gradient rule: {}", .ops.join(", "))]
    UnsupportedOps { ops: Vec<String> },
    /// An op this tool cannot handle in this form, or a shape it cannot infer (the node is named).
    #[error(transparent)]
    Op(OpError),
    #[error(
        "node '{node}' ({op_type}) fixes the batch at {exported} and cannot run at batch {requested} ({reason}); train this export with --batch {exported}, or re-export it with a dynamic batch"
    )]
    StaticBatch {
        node: String,
        op_type: String,
        exported: i64,
        requested: i64,
        reason: String,
    },
    #[error("no trainable parameters (after --freeze/--train-only and --bn): nothing to fine-tune")]
    NoTrainableParams,
    #[error("gradient rule for '{0}' is registered twice")]
    DuplicateRule(String),
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("generated train-step graph is invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Ir(#[from] IrError),
}

impl From<OpError> for GradError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Duplicate(op) => GradError::DuplicateRule(op),
            OpError::Ir(e) => GradError::Ir(e),
            e => GradError::Op(e),
        }
    }
}

pub type Result<T, E = GradError> = std::result::Result<T, E>;

pub(crate) fn unsupported(n: &crate::proto::NodeProto, reason: impl Into<String>) -> GradError {
    GradError::Op(crate::ops::error::unsupported(n, reason))
}

pub(crate) fn shape_err(n: &crate::proto::NodeProto, reason: impl Into<String>) -> GradError {
    GradError::Op(crate::ops::error::shape_err(n, reason))
}
