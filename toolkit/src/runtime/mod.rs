//! The ONNX Runtime layer: the only module of `ratio` that names `ort` types.
//!
//! ```no_run
//! use toolkit::runtime::{Feed, Runner, RuntimeConfig};
//! let mut r = Runner::from_path("m.onnx".as_ref(), &RuntimeConfig::default())?;
//! let x = ndarray::ArrayD::<f32>::zeros(vec![1, 1, 28, 28]);
//! let out = r.run(&[("input", Feed::F32(x.view()))])?;
//! let logits = out.get("logits")?;
//! # Ok::<(), toolkit::runtime::RuntimeError>(())
//! ```

mod binding;
mod config;
mod env;
mod error;
pub mod nchwc;
mod outputs;
mod profile;
mod random;
mod runner;
mod spec;

pub use binding::{Buffers, Resident, StateSlot, Upload};
pub use config::{Device, OptLevel, RuntimeConfig};
pub use env::{
    ORT_LIBRARY, SETUP_HINT, check_library, ensure_ort, library_path, loaded_library, nvidia_device_present,
};
pub use error::{Result, RuntimeError};
pub use outputs::Outputs;
pub use profile::{NodeTime, OpTime, ProfileSummary, ProviderTime, summarize_events, summarize_profile};
pub use random::{RANDOM_INPUTS, RandomInputs, random_inputs, random_inputs_filled};
pub use runner::{Prepared, RawF32, Runner};
pub use spec::{ElemType, Feed, TensorSpec, check_feeds, check_feeds_except, fmt_dims};
