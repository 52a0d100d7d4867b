//! Errors of gradient-graph generation. Every variant names the node (and op) it is about.

use crate::error::IrError;
use crate::ops::OpError;

#[derive(Debug, thiserror::Error)]
pub enum GradError {
    #[error("the model uses ops with no gradient rule: {}", .ops.join(", "))]
    UnsupportedOps { ops: Vec<String> },
    #[error("node '{node}' ({op_type}): {reason}")]
    Unsupported {
        node: String,
        op_type: String,
        reason: String,
    },
    #[error("shape inference failed at node '{node}' ({op_type}): {reason}")]
    Shape {
        node: String,
        op_type: String,
        reason: String,
    },
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
            OpError::Unsupported { node, op_type, reason } => GradError::Unsupported { node, op_type, reason },
            OpError::Shape { node, op_type, reason } => GradError::Shape { node, op_type, reason },
            OpError::Duplicate(op) => GradError::DuplicateRule(op),
            OpError::Ir(e) => GradError::Ir(e),
        }
    }
}

pub type Result<T, E = GradError> = std::result::Result<T, E>;

pub(crate) fn unsupported(n: &crate::proto::NodeProto, reason: impl Into<String>) -> GradError {
    use crate::ir::attr::NodeExt;
    GradError::Unsupported {
        node: n.name_or_output().into(),
        op_type: n.op().into(),
        reason: reason.into(),
    }
}

pub(crate) fn shape_err(n: &crate::proto::NodeProto, reason: impl Into<String>) -> GradError {
    use crate::ir::attr::NodeExt;
    GradError::Shape {
        node: n.name_or_output().into(),
        op_type: n.op().into(),
        reason: reason.into(),
    }
}
