//! What a gradient rule is. Rules are not registered here: each op's [`crate::ops::OpSpec`] names its rule, and
//! [`registry`] is the one op table.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::proto::NodeProto;

pub use crate::ops::Registry;

/// Local VJP: incoming gradients per output (`None` where no gradient flows) → gradient per input.
pub type GradFn = fn(&mut GradCx, &NodeProto, &[Option<String>]) -> Result<Vec<Option<String>>>;
/// A training-mode forward that replaces the node in the train-step graph (BN with batch statistics).
pub type ForwardFn = fn(&mut GradCx, &NodeProto) -> Result<bool>;

#[derive(Clone, Copy)]
pub enum Grad {
    /// No rule yet: a model that uses the op cannot be fine-tuned, and says so before any work.
    Missing,
    /// Gradient stops here (shape arithmetic, integer ops, comparisons).
    NonDifferentiable,
    Rule(GradFn),
}

/// The op table, as autodiff sees it.
pub fn registry() -> Result<&'static Registry> {
    Ok(crate::ops::registry()?)
}
