//! The `ratio` toolkit: ONNX Runtime layer, datasets, training, evaluation, latency and richness analysis, and
//! the command-line front end. Only this crate links `ort`, `clap` and `indicatif`.

pub mod analysis;
pub mod calibrate;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod data;
pub mod printer;
pub mod provenance;
pub mod runtime;
pub mod sweep;
pub mod train;
