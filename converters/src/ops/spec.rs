//! [`OpSpec`]: everything the crates know about one op, in one value. Each field has one consumer (named in its
//! doc), so adding an op means filling one struct, and a coverage test checks that every registered op answers
//! every consumer's question.

use crate::act::ActKind;
use crate::autodiff::StateKind;
use crate::autodiff::registry::{ForwardFn, Grad};
use crate::ir::index::GraphIndex;
use crate::ops::error::Result;
use crate::proto::{GraphProto, NodeProto};
use crate::shapes::ValInfo;

/// Output infos from input infos (`None` for an absent optional input or an unknown one).
pub type InferFn = fn(&NodeProto, &[Option<&ValInfo>]) -> Result<Vec<ValInfo>>;
/// Whether a node of an op that can be an activation is one (Clip is ReLU6 only with constant bounds 0 and 6).
pub type ActTest = fn(&GraphProto, &GraphIndex, &NodeProto) -> bool;
/// Multiply-accumulates of one layer from its input infos and its first output's shape (empty when unknown).
pub type MacsFn = fn(&NodeProto, &[Option<&ValInfo>], &[i64]) -> u64;

/// Whether the converter may treat a node as a removable activation ([`crate::act::classify`]).
#[derive(Clone, Copy)]
pub enum Act {
    Never,
    Always(ActKind),
    When(ActKind, ActTest),
}

impl Act {
    /// The kind a node of this op can be, if any.
    pub fn kind(&self) -> Option<ActKind> {
        match *self {
            Act::Never => None,
            Act::Always(k) | Act::When(k, _) => Some(k),
        }
    }
}

/// How slot detection ([`crate::slots`]) walks back from an activation to the layers that feed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// The walk ends here without a feeder.
    Stop,
    /// A convolution: a feeder.
    Conv,
    /// A fully connected layer: a feeder that makes the slot part of the classifier head.
    Fc,
    /// The op does not change which layer feeds the activation; continue through these inputs.
    Through(DataInputs),
}

/// Which inputs carry data (as opposed to statistics, shapes or pads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataInputs {
    All,
    First,
}

/// How an op depends on its data inputs, for the leaky-ReLU ensemble decomposition (`toolkit::analysis::leaky`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affine {
    /// Affine in its data inputs jointly (Conv, Add, inference-mode BN, reshapes, average pooling).
    Yes,
    /// Affine in each data input alone, not in two at once (Mul, Div, MatMul, Gemm).
    PerOperand,
    /// Piecewise linear with a choice the decomposition records and replays (Relu, LeakyRelu, MaxPool).
    Gated,
    /// Non-affine, with no choice to record.
    No,
}

/// A constant target shape among the inputs, and how its entries relate to the data input's dims, for
/// re-batching a static-batch export ([`crate::autodiff::rebatch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    None,
    /// Input `slot` is a Reshape target: output dims regroup the data dims in order.
    Reshape(usize),
    /// Input `slot` is a broadcast target: output dims align with the data dims from the right.
    Broadcast(usize),
}

#[derive(Clone, Copy)]
pub struct OpSpec {
    /// ONNX `op_type` in the default domain.
    pub op_type: &'static str,
    /// Shape, element type and folded integer values of the outputs ([`crate::shapes`]).
    pub infer: InferFn,
    /// Gradient rule ([`crate::autodiff`]).
    pub grad: Grad,
    /// Training-mode forward that replaces the node in the train step (BN with batch statistics).
    pub forward_train: Option<ForwardFn>,
    /// Input slots that hold learnable weights when fed by a constant (Conv W/B, Gemm B/C, BN scale/bias…).
    pub param_slots: &'static [usize],
    /// Input slots the training-mode forward updates as carried state (BN running mean and variance).
    pub state_slots: &'static [(usize, StateKind)],
    pub act: Act,
    pub walk: Walk,
    pub affine: Affine,
    /// Ends a block when it joins two computed tensors (residual Add/Sum, Concat) ([`crate::slots::is_join`]).
    pub join: bool,
    /// Collapses space: what follows is the classifier head (global pooling, Flatten).
    pub global: bool,
    /// Lowers the resolution when strided: starts a new stage.
    pub downsamples: bool,
    /// Passes its input through unchanged at inference (Identity, Dropout).
    pub identity: bool,
    /// Its output depends only on the input's shape, not its values (Shape, Size): integer bookkeeping.
    pub shape_only: bool,
    pub target: Target,
    /// A layer `inspect` counts, and its multiply-accumulates.
    pub macs: Option<MacsFn>,
}

impl OpSpec {
    /// An op with its shape rule and affinity; every other fact defaults to "no" and the gradient to
    /// [`Grad::Missing`], so what an op can do is always written next to its name.
    pub const fn new(op_type: &'static str, infer: InferFn, affine: Affine) -> Self {
        OpSpec {
            op_type,
            infer,
            grad: Grad::Missing,
            forward_train: None,
            param_slots: &[],
            state_slots: &[],
            act: Act::Never,
            walk: Walk::Stop,
            affine,
            join: false,
            global: false,
            downsamples: false,
            identity: false,
            shape_only: false,
            target: Target::None,
            macs: None,
        }
    }

    pub const fn grad(mut self, grad: Grad) -> Self {
        self.grad = grad;
        self
    }

    /// Explicitly non-differentiable: the gradient stops here (shape arithmetic, comparisons).
    pub const fn no_grad(mut self) -> Self {
        self.grad = Grad::NonDifferentiable;
        self
    }

    pub const fn forward_train(mut self, f: ForwardFn) -> Self {
        self.forward_train = Some(f);
        self
    }

    pub const fn params(mut self, slots: &'static [usize]) -> Self {
        self.param_slots = slots;
        self
    }

    pub const fn state(mut self, slots: &'static [(usize, StateKind)]) -> Self {
        self.state_slots = slots;
        self
    }

    pub const fn act(mut self, act: Act) -> Self {
        self.act = act;
        self
    }

    pub const fn walk(mut self, walk: Walk) -> Self {
        self.walk = walk;
        self
    }

    pub const fn join(mut self) -> Self {
        self.join = true;
        self
    }

    pub const fn global(mut self) -> Self {
        self.global = true;
        self
    }

    pub const fn downsamples(mut self) -> Self {
        self.downsamples = true;
        self
    }

    pub const fn identity(mut self) -> Self {
        self.identity = true;
        self
    }

    pub const fn shape_only(mut self) -> Self {
        self.shape_only = true;
        self
    }

    pub const fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    pub const fn macs(mut self, f: MacsFn) -> Self {
        self.macs = Some(f);
        self
    }
}

/// A layer that has parameters but no multiply-accumulates of its own (BN, PRelu).
pub fn no_macs(_: &NodeProto, _: &[Option<&ValInfo>], _: &[i64]) -> u64 {
    0
}
