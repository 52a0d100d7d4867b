//! `ratio sweep`: expand a grid of (ratio, policy, seed) variants, run each variant's pipeline
//! (convert → [calibrate →] train/fine-tune → inspect → eval → bench → richness) as child processes of this same
//! binary, record every step under one run directory, resume from those records, and summarise: per sample and
//! per seed against 1:1 (`summary`), from the steps' typed records (`collect`).
//!
//! Layout of a run directory:
//! ```text
//! manifest.json                 ratio/sweep-manifest/v1 — fixes the grid; a different sweep is refused
//! base/{model.onnx,train.json}  the shared 1:1 starting point (fine-tune mode with a built-in model)
//! variants/<id>/<step>.json     ratio/sweep-step/v2 — argv, versions, input/output sha256, exit status, the step's
//!                               own record
//! variants/<id>/*.onnx          the variant's models
//! summary.json                  ratio/sweep-summary/v2
//! report/                       `ratio report` output
//! ```

pub mod calibrate;
pub mod collect;
pub mod exec;
pub mod plan;
pub mod provenance;
pub mod render;
pub mod slurm;
pub mod spec;
pub mod stats;
pub mod store;
pub mod summary;
