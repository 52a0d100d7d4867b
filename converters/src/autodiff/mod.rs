//! Autodiff to a train-step ONNX graph: forward + softmax cross-entropy + backward + optimizer update, in
//! standard ai.onnx ops, so one ordinary ONNX Runtime session (CPU or CUDA EP) trains the model.
//!
//! Each op's gradient rule (ops/<op>.rs) is named by its spec in the one op table ([`crate::ops`]); a rule emits
//! only its local gradient nodes through [`GradCx`], and the driver ([`build_train_step`]) sums fan-out and skips
//! values with no path from a trainable parameter. Shapes are static: the one shape inference ([`crate::shapes`])
//! runs over the forward graph at the chosen batch size first. Before that the model is adapted to train:
//! exporter-tied tensors are untied ([`untie`]) and a static batch is rewritten to the training batch
//! ([`rebatch`]); both are reported in [`TrainStep::adaptations`].

pub mod build;
pub mod cx;
pub mod error;
pub mod info;
pub mod loss;
pub mod ops;
pub mod optim;
pub mod params;
pub mod rebatch;
pub mod registry;
pub mod shape;
pub mod step;
pub mod untie;

pub use build::build_train_step;
pub use cx::{BnMode, DwStrategy, GradCx};
pub use error::GradError;
pub use optim::Optimizer;
pub use rebatch::BatchRewrite;
pub use registry::{Grad, registry};
pub use step::{Adaptation, StateKind, StateTensor, TrainStep, TrainStepConfig, summarize};
pub use untie::Untied;
