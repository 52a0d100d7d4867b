//! Autodiff to a train-step ONNX graph: forward + softmax cross-entropy + backward + optimizer update, in
//! standard ai.onnx ops, so one ordinary ONNX Runtime session (CPU or CUDA EP) trains the model.
//!
//! Each op has one small rule (ops/<op>.rs) registered in one table; a rule emits only its local gradient
//! nodes through [`GradCx`], and the driver ([`build_train_step`]) sums fan-out and skips values with no path
//! from a trainable parameter. Shapes are static: a small shape inference runs over the forward graph for the
//! chosen batch size first.

pub mod cx;
pub mod error;
pub mod info;
pub mod loss;
pub mod ops;
pub mod optim;
pub mod params;
pub mod registry;
pub mod shape;
pub mod step;

pub use cx::{BnMode, DwStrategy, GradCx};
pub use error::GradError;
pub use optim::Optimizer;
pub use registry::{Grad, Rule, registry};
pub use step::{StateKind, StateTensor, TrainStep, TrainStepConfig, build_train_step};
