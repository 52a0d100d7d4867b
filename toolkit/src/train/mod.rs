//! Fine-tuning and training on ONNX Runtime through a generated train-step graph (`converters::autodiff`):
//! train-step sessions (host-copying and device-resident), streamed data and augmentation, schedules,
//! checkpoints and the one loop behind `ratio finetune` and `ratio train`.

mod artifacts;
pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod data;
mod epoch;
pub mod eval;
pub mod resident;
pub mod schedule;
pub mod session;
pub mod trainer;

pub use resident::ResidentSession;
pub use session::{Residency, StepOut, StepSession, Stepper};
pub use trainer::{ExportHook, TrainOptions, TrainOutcome, train};
