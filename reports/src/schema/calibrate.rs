//! Body of `ratio calibrate --json` records (`ratio/calibrate/v1`): what was refit on which data, and how the
//! model compares with its source before and after, on held-out samples.

use serde::{Deserialize, Serialize};

use super::Body;
use super::richness::DataRef;

/// Accuracy and agreement with the source (reference) model of one stage, on the held-out samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub samples: u64,
    /// Top-1 against the labels.
    pub top1: Option<f64>,
    /// Share of samples whose top-1 class equals the reference model's (`None` without a reference).
    pub agreement: Option<f64>,
    /// Mean over samples of ‖z − z_ref‖ / ‖z_ref‖ for the logits z.
    pub mean_rel_logit_error: Option<f64>,
    /// Largest |logit|: how far activations are from the source's scale.
    pub max_abs_logit: f64,
}

/// One layer the calibration changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFit {
    pub node: String,
    pub op: String,
    /// `adabn`, `affine` or `lsq`.
    pub method: String,
    /// Rows the fit saw (samples, or sampled output positions for convolutions; batches' samples for AdaBN).
    pub rows: u64,
    /// Features per output of a least-squares fit (C_in/g·k·k, plus 1 for the bias).
    pub features: Option<usize>,
    /// Ridge penalty λ of a least-squares fit (toward the weights it started from).
    pub lambda: Option<f64>,
    /// ‖y − y_ref‖ / ‖y_ref‖ of the layer's output on the calibration rows, before and after the fit.
    pub rel_error_before: Option<f64>,
    pub rel_error_after: Option<f64>,
    /// AdaBN: mean |μ_new − μ_old| / √(σ²_old + ε) over channels, and mean σ²_new / σ²_old.
    pub mean_shift: Option<f64>,
    pub var_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrateBody {
    /// The model calibrated (never modified) and what was written.
    pub source: String,
    pub source_sha256: String,
    pub output: String,
    pub output_sha256: String,
    /// The model whose tensors the fits match (the conversion's source); `None` for AdaBN alone.
    pub reference: Option<String>,
    pub reference_sha256: Option<String>,
    /// Method asked for (`auto`, `adabn`, `affine`, `lsq`); each layer says what it got.
    pub method: String,
    /// Calibration samples (the first N of `data`).
    pub samples: u64,
    pub batch: usize,
    /// Calibration data identity and preprocessing.
    pub data: DataRef,
    /// Held-out data the stages are measured on, and which samples of it.
    pub eval_data: DataRef,
    pub held_out: String,
    /// Ridge factor (λ = ridge · trace(XᵀX)/d), conv positions sampled per sample, and their seed.
    pub ridge: f64,
    pub positions: usize,
    pub seed: u64,
    /// Activations of the reference that the model removed or changed.
    pub removed: Vec<String>,
    pub reference_stage: Option<Stage>,
    pub before: Stage,
    pub after: Stage,
    pub layers: Vec<LayerFit>,
    pub seconds: f64,
}

impl Body for CalibrateBody {
    const KIND: &'static str = "calibrate";
}
