//! Errors of the richness and Leaky-ReLU analyses; each names the model file and what is wrong with it.

use crate::analysis::cka::CkaError;
use crate::analysis::probe::ProbeError;
use crate::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum RichnessError {
    #[error("{model}: no layer named {names} (layer names are node names or output names; candidates: {candidates})")]
    UnknownLayers {
        model: String,
        names: String,
        candidates: String,
    },
    #[error("{model}: --layers regex '{pattern}' matches no node or output name")]
    NoMatch { model: String, pattern: String },
    #[error("{model}: no ReLU, ReLU6 (Clip 0..6), LeakyRelu or PRelu activation; {what} needs rectifier layers")]
    NoActivations { model: String, what: String },
    #[error("{model}: expected exactly one data input, found {found}")]
    Inputs { model: String, found: String },
    #[error("models take different inputs: {first} has {first_input}, {other} has {other_input}")]
    MismatchedInputs {
        first: String,
        first_input: String,
        other: String,
        other_input: String,
    },
    #[error("{model}: layer '{layer}' has shape {shape}; expected [N, C, …] with the batch first")]
    LayerShape {
        model: String,
        layer: String,
        shape: String,
    },
    #[error("{model}: layer '{layer}': linear probe: {source}")]
    Probe {
        model: String,
        layer: String,
        source: ProbeError,
    },
    #[error("CKA between {left} and {right}: {source}")]
    Cka {
        left: String,
        right: String,
        source: CkaError,
    },
    #[error("no samples were analysed (empty data set or --samples 0)")]
    NoSamples,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{model}: {reason}")]
    Graph { model: String, reason: String },
}
