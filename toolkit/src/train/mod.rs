//! Fine-tuning and training on ONNX Runtime through a generated train-step graph (`converters::autodiff`):
//! the session wrapper, data feeding, schedules, augmentation, checkpoints and the one loop behind
//! `ratio finetune` and `ratio train`.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod schedule;
pub mod session;
pub mod trainer;

pub use session::{StepOut, StepSession};
pub use trainer::{ExportHook, TrainOptions, TrainOutcome, train};
