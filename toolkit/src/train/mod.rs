//! Fine-tuning and training on ONNX Runtime through a generated train-step graph (`converters::autodiff`):
//! the session wrapper, data feeding, schedules, checkpoints and the one loop behind `ratio finetune` and
//! `ratio train`.

pub mod session;

pub use session::{StepOut, StepSession};
