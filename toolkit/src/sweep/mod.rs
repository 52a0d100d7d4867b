//! `ratio sweep`: expand a grid of (ratio, policy, seed) variants, run each variant's pipeline
//! (convert → train/fine-tune → eval → bench → richness) as child processes of this same binary, record every
//! step under one run directory, resume from those records, and summarise over seeds.
//!
//! Layout of a run directory:
//! ```text
//! manifest.json                 ratio/sweep-manifest/v1 — fixes the grid; a different sweep is refused
//! base/{model.onnx,train.json}  the shared 1:1 starting point (fine-tune mode with a built-in model)
//! variants/<id>/<step>.json     ratio/sweep-step/v1 — argv, versions, input/output sha256, exit status, step JSON
//! variants/<id>/*.onnx          the variant's models
//! summary.json                  ratio/sweep-summary/v1
//! report/                       `ratio report` output
//! ```

pub mod exec;
pub mod plan;
pub mod provenance;
pub mod render;
pub mod slurm;
pub mod spec;
pub mod stats;
pub mod store;
pub mod summary;
