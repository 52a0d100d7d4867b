//! Post-conversion calibration (DESIGN.md §7): make a converted model reproduce its source again, on data, with
//! no gradient step. The graph keeps its ops; only initializers change.
//!
//! - BatchNormalization kept: re-estimate the running statistics on data ([`adabn`]).
//! - BN folded or absent: every linear layer downstream of a removed activation is refit, in topological order,
//!   so that its output matches the source model's at the same tensor ([`refit`]): a per-channel affine match
//!   of mean and std, or a ridge least-squares refit on its streamed inputs.
//! - `auto`: AdaBN for the BN nodes, then least squares for every other affected layer whose features
//!   (C_in/g·k·k + 1) are at most [`CalibrateOptions::lsq_max_features`], affine for the rest.
//!
//! Accuracy and agreement with the source are measured before and after on held-out samples ([`measure`]).

pub mod adabn;
pub mod fit;
pub mod layers;
pub mod linear;
pub mod measure;
pub mod refit;
pub mod reinsert;
pub mod rows;
pub mod samples;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use converters::Model;
use reports::schema::calibrate::{LayerFit, Stage};
use serde::Serialize;

use self::layers::{Plan, Target};
use self::refit::{Fit, RefitOptions};
use self::samples::CalibData;
use crate::runtime::RuntimeConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// AdaBN where BatchNormalization follows, least squares where feasible, affine elsewhere.
    #[default]
    Auto,
    /// Re-estimate BatchNormalization running statistics only.
    Adabn,
    /// Per-channel affine match of mean and std at every affected layer.
    Affine,
    /// Ridge least-squares refit of every affected layer (affine where it cannot apply).
    Lsq,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Adabn => "adabn",
            Method::Affine => "affine",
            Method::Lsq => "lsq",
        }
    }

    fn needs_reference(self) -> bool {
        !matches!(self, Method::Adabn)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    #[error(
        "{model}: --method {method} matches the source model's tensors, but no reference is given and the model records none (ratio.source); pass --reference SOURCE.onnx"
    )]
    NoReference { model: String, method: &'static str },
    #[error("{reference}: a reference model whose tensors do not line up with {model}: {reason}")]
    LineUp {
        reference: String,
        model: String,
        reason: String,
    },
    #[error(
        "{model}: nothing to calibrate: it has the same activations and layers as {reference} (no removed activation relative to it){hint}"
    )]
    NothingToCalibrate {
        model: String,
        reference: String,
        hint: &'static str,
    },
    #[error("{model}: {reason}")]
    Model { model: String, reason: String },
}

/// Knobs of [`calibrate`].
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    pub method: Method,
    /// λ = ridge · trace(XᵀX)/d for least squares, shrinking toward the layer's weights.
    pub ridge: f64,
    /// Conv output positions drawn per sample for least squares.
    pub positions: usize,
    /// `auto` uses least squares up to this many features per output, affine above.
    pub lsq_max_features: usize,
    pub seed: u64,
    /// Sessions for the model and its reference run side by side; one intra-op thread each (the default) keeps
    /// ONNX Runtime's spinning thread pool from fighting the other session and the fits for the cores.
    pub runtime: RuntimeConfig,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            method: Method::Auto,
            ridge: 1e-2,
            positions: 16,
            lsq_max_features: 1200,
            seed: 0,
            runtime: RuntimeConfig::cpu().with_threads(1),
        }
    }
}

/// What [`calibrate`] did.
#[derive(Debug, Clone)]
pub struct Calibrated {
    pub model: Model,
    pub removed: Vec<String>,
    pub layers: Vec<LayerFit>,
    pub reference_stage: Option<Stage>,
    pub before: Stage,
    pub after: Stage,
    pub seconds: f64,
}

/// The single data input and the first output of `model`.
pub fn io_names(model: &Model) -> Result<(String, String)> {
    let (input, _) = crate::analysis::richness::data_input(model)?;
    let output = model
        .graph()
        .output
        .first()
        .and_then(|o| o.name.clone())
        .with_context(|| format!("{}: the model has no outputs", model.display_name()))?;
    Ok((input, output))
}

fn has_bn(model: &Model) -> bool {
    model
        .graph()
        .node
        .iter()
        .any(|n| n.op_type.as_deref() == Some("BatchNormalization"))
}

/// Which fit each target gets under `method` (targets AdaBN covers are left out).
fn choose(plan: &Plan, method: Method, adabn_ran: bool, opts: &CalibrateOptions, samples: usize) -> Vec<(Target, Fit)> {
    plan.targets
        .iter()
        .filter(|t| !(adabn_ran && t.bn_follows))
        .filter_map(|t| {
            let l = &t.linear;
            let lsq_ok = !matches!(&l.kind, linear::Kind::Conv { kernel, .. } if kernel.len() != 2);
            let rows = match l.kind {
                linear::Kind::Conv { .. } => samples * opts.positions,
                _ => samples,
            };
            let fit = match method {
                Method::Adabn => return None,
                Method::Affine => Fit::Affine,
                Method::Lsq if lsq_ok => Fit::Lsq,
                Method::Lsq => Fit::Affine,
                // Least squares needs well more rows than unknowns per output to beat the affine match.
                Method::Auto if lsq_ok && l.features() <= opts.lsq_max_features && rows >= 2 * l.features() => Fit::Lsq,
                Method::Auto => Fit::Affine,
            };
            Some((t.clone(), fit))
        })
        .collect()
}

/// Calibrate `model` on `data` against `reference` (the model it was converted from).
pub fn calibrate(
    model: &Model,
    reference: Option<&Model>,
    data: &mut CalibData,
    opts: &CalibrateOptions,
) -> Result<Calibrated> {
    let t0 = Instant::now();
    let name = model.display_name();
    let (input, output) = io_names(model)?;
    if reference.is_none() && opts.method.needs_reference() && !(opts.method == Method::Auto && has_bn(model)) {
        return Err(CalibError::NoReference {
            model: name,
            method: opts.method.as_str(),
        }
        .into());
    }
    let plan = match reference {
        Some(r) => {
            check_io(model, r, &input, &output)?;
            layers::plan(model, r)?
        }
        None => Plan::default(),
    };
    let adabn_wanted = matches!(opts.method, Method::Adabn) || (opts.method == Method::Auto && has_bn(model));
    if let Some(r) = reference
        && plan.targets.is_empty()
        && !adabn_wanted
    {
        return Err(CalibError::NothingToCalibrate {
            model: name,
            reference: r.display_name(),
            hint: if has_bn(model) {
                "; `--method adabn` still re-estimates its BatchNormalization statistics"
            } else {
                ""
            },
        }
        .into());
    }
    let classes = model
        .graph()
        .output
        .first()
        .and_then(converters::ir::build::value_info_dims)
        .and_then(|d| d.get(1).copied().flatten())
        .map(|k| k as usize);
    data.check_fits(model, &input, classes)?;
    let (before_logits, ref_logits) = std::thread::scope(|s| {
        let theirs = reference.map(|r| s.spawn(|| measure::logits(r, data, &input, &output, &opts.runtime)));
        let ours = measure::logits(model, data, &input, &output, &opts.runtime);
        let theirs = theirs
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("the reference session panicked"))?
            })
            .transpose();
        Ok::<_, anyhow::Error>((ours?, theirs?))
    })?;
    let before = measure::stage(&before_logits, ref_logits.as_ref());
    let reference_stage = ref_logits.as_ref().map(|l| measure::stage(l, None));

    let mut current = model.clone();
    let mut fits = Vec::new();
    if adabn_wanted {
        let (m, f) = adabn::adabn(&current, data, &input, &opts.runtime)?;
        current = m;
        fits.extend(f);
    }
    let jobs = choose(&plan, opts.method, adabn_wanted, opts, data.samples());
    if let (Some(r), false) = (reference, jobs.is_empty()) {
        let ropts = RefitOptions {
            ridge: opts.ridge,
            positions: opts.positions,
            seed: opts.seed,
            runtime: opts.runtime.clone(),
        };
        let (m, f) = refit::refit(current, r, &jobs, data, &input, &ropts)?;
        current = m;
        fits.extend(f);
    }
    let after_logits = measure::logits(&current, data, &input, &output, &opts.runtime)?;
    let after = measure::stage(&after_logits, ref_logits.as_ref());
    Ok(Calibrated {
        model: current,
        removed: plan.removed,
        layers: fits,
        reference_stage,
        before,
        after,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The reference must take the same input and produce the same output tensor as the model.
fn check_io(model: &Model, reference: &Model, input: &str, output: &str) -> Result<()> {
    let line_up = |reason: String| CalibError::LineUp {
        reference: reference.display_name(),
        model: model.display_name(),
        reason,
    };
    let (rin, rout) = io_names(reference)?;
    if rin != input || model.input_dims(input) != reference.input_dims(&rin) {
        bail!(line_up(format!(
            "its input is '{rin}' {:?}, the model's '{input}' {:?}",
            reference.input_dims(&rin),
            model.input_dims(input)
        )));
    }
    if rout != output {
        bail!(line_up(format!("its output is '{rout}', the model's '{output}'")));
    }
    Ok(())
}

/// Record provenance in the calibrated model's `metadata_props`.
pub fn record_metadata(m: &mut Model, data: &CalibData, method: Method, reference_sha256: Option<&str>) {
    m.set_metadata("ratio.calibrate.method", method.as_str());
    m.set_metadata("ratio.calibrate.samples", data.samples().to_string());
    m.set_metadata("ratio.calibrate.data", data.data.path.clone());
    m.set_metadata("ratio.calibrate.data_sha256", data.data.sha256.clone());
    m.set_metadata("ratio.calibrate.preset", data.data.preset.clone());
    m.set_metadata(
        "ratio.calibrate.preset_fingerprint",
        data.data.preset_fingerprint.clone(),
    );
    if let Some(sha) = reference_sha256 {
        m.set_metadata("ratio.calibrate.reference_sha256", sha);
    }
    m.set_metadata(
        "ratio.calibrate.tool_version",
        concat!("ratio ", env!("CARGO_PKG_VERSION")),
    );
}
