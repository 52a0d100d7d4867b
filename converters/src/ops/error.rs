//! Errors of the op table and of shape inference. Every variant names the node (and op) it is about.

use crate::error::IrError;
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
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
    #[error("op '{0}' is registered twice")]
    Duplicate(String),
    #[error(transparent)]
    Ir(#[from] IrError),
}

pub type Result<T, E = OpError> = std::result::Result<T, E>;

pub(crate) fn unsupported(n: &NodeProto, reason: impl Into<String>) -> OpError {
    OpError::Unsupported {
        node: n.name_or_output().into(),
        op_type: n.op().into(),
        reason: reason.into(),
    }
}

pub(crate) fn shape_err(n: &NodeProto, reason: impl Into<String>) -> OpError {
    OpError::Shape {
        node: n.name_or_output().into(),
        op_type: n.op().into(),
        reason: reason.into(),
    }
}
