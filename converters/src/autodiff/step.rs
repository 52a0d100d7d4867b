//! What a train step is: its configuration, the [`TrainStep`] the builder ([`crate::autodiff::build`]) returns,
//! and how learned values go back into the inference model.

use std::collections::HashMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::autodiff::cx::BnMode;
use crate::autodiff::error::{GradError, Result};
use crate::autodiff::optim::Optimizer;
use crate::autodiff::params::Origin;
use crate::autodiff::rebatch::BatchRewrite;
use crate::autodiff::untie::Untied;
use crate::ir::Model;
use crate::ir::tensor;
use crate::proto::ModelProto;

#[derive(Debug, Clone, Default)]
pub struct TrainStepConfig {
    pub batch_size: i64,
    /// Image input; default: the first graph input that is not an initializer.
    pub input: Option<String>,
    /// Logits output [N, K]; default: the first graph output.
    pub logits: Option<String>,
    pub label_smoothing: f32,
    pub optimizer: Optimizer,
    pub bn: BnMode,
    pub freeze: Option<Regex>,
    pub train_only: Option<Regex>,
    pub dw: crate::autodiff::cx::DwStrategy,
    /// Also output each parameter's gradient as `<param>.grad` (for gradient checks and debugging).
    pub emit_gradients: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Param,
    Momentum,
    AdamM,
    AdamV,
    RunningMean,
    RunningVar,
}

/// One tensor carried from step to step: fed as `input`, read back as `output`.
#[derive(Debug, Clone)]
pub struct StateTensor {
    /// The tensor it belongs to in the inference model (for optimizer slots: the parameter's name).
    pub name: String,
    pub kind: StateKind,
    pub input: String,
    pub output: String,
    pub dims: Vec<i64>,
    pub init: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct TrainStep {
    pub model: ModelProto,
    pub state: Vec<StateTensor>,
    pub batch_input: String,
    pub label_input: String,
    pub lr_input: String,
    /// AdamW's step counter t (float, starting at 1).
    pub step_input: Option<String>,
    pub loss_output: String,
    pub logits_output: String,
    pub batch_size: i64,
    /// Full input shape including the batch.
    pub input_shape: Vec<i64>,
    pub num_classes: i64,
    /// (parameter, gradient output) when `emit_gradients` was set.
    pub grad_outputs: Vec<(String, String)>,
    /// How the model was adapted to train (static batch rewritten, exporter-tied tensors untied): tell the user.
    pub adaptations: Vec<Adaptation>,
    /// The inference model learned values are written into: the input with exporter-tied tensors untied (each
    /// copy is its own initializer), at its exported batch.
    pub(crate) source: Model,
    pub(crate) origins: HashMap<String, Origin>,
}

/// A change the builder made so the model can train, worth a line to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adaptation {
    Rebatched(BatchRewrite),
    Untied(Untied),
}

/// One line per kind of adaptation, for a trainer to print: the rewritten static-batch targets, then the untied
/// parameters and running statistics (each [`Adaptation`] in full is its `Display`).
pub fn summarize(adaptations: &[Adaptation]) -> Vec<String> {
    let list = |names: Vec<&str>| {
        let shown: Vec<String> = names.iter().take(4).map(|n| format!("'{n}'")).collect();
        match names.len().saturating_sub(4) {
            0 => shown.join(", "),
            k => format!("{} and {k} more", shown.join(", ")),
        }
    };
    let mut lines = Vec::new();
    let rebatched: Vec<&BatchRewrite> = adaptations
        .iter()
        .filter_map(|a| match a {
            Adaptation::Rebatched(r) => Some(r),
            _ => None,
        })
        .collect();
    if let Some(first) = rebatched.first() {
        lines.push(format!(
            "the export fixes its batch: rewrote {} constant target{} to the training batch ({}; e.g. {:?} → {:?})",
            rebatched.len(),
            if rebatched.len() == 1 { "" } else { "s" },
            list(rebatched.iter().map(|r| r.node.as_str()).collect()),
            first.from,
            first.to
        ));
    }
    for running in [false, true] {
        let untied: Vec<&Untied> = adaptations
            .iter()
            .filter_map(|a| match a {
                Adaptation::Untied(u) if u.running == running => Some(u),
                _ => None,
            })
            .collect();
        if untied.is_empty() {
            continue;
        }
        let copies: usize = untied.iter().map(|u| u.copies.len()).sum();
        lines.push(format!(
            "the exporter merged equal tensors: {copies} {} that were separate in PyTorch now {} on their own (they shared {})",
            if running { "BatchNorm running statistics" } else { "parameters" },
            if running { "update" } else { "train" },
            list(untied.iter().map(|u| u.source.as_str()).collect())
        ));
    }
    lines
}

impl std::fmt::Display for Adaptation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Adaptation::Rebatched(r) => r.fmt(f),
            Adaptation::Untied(u) => u.fmt(f),
        }
    }
}

impl TrainStep {
    pub fn num_params(&self) -> usize {
        self.state
            .iter()
            .filter(|s| s.kind == StateKind::Param)
            .map(|s| tensor::numel(&s.dims))
            .sum()
    }

    /// The inference model with `values` (one per `state` entry, same order) written into its weights and BN
    /// running statistics. Optimizer slots are ignored.
    pub fn to_inference(&self, values: &[Vec<f32>]) -> Result<Model> {
        if values.len() != self.state.len() {
            return Err(GradError::Config(format!(
                "{} state values given, the train step has {}",
                values.len(),
                self.state.len()
            )));
        }
        let mut m = self.source.clone();
        let mut patch = crate::ir::edit::Patch::new();
        for (s, v) in self.state.iter().zip(values) {
            if !matches!(
                s.kind,
                StateKind::Param | StateKind::RunningMean | StateKind::RunningVar
            ) {
                continue;
            }
            if v.len() != tensor::numel(&s.dims) {
                return Err(GradError::Config(format!(
                    "tensor '{}' needs {} values, got {}",
                    s.name,
                    tensor::numel(&s.dims),
                    v.len()
                )));
            }
            let t = tensor::from_f32(&s.name, &s.dims, v);
            match self.origins.get(&s.name) {
                Some(Origin::Constant(i)) => {
                    patch.set_constant(*i, t);
                }
                _ => {
                    // Set, never add: a state tensor the source does not hold means the step and model disagree.
                    if !m
                        .graph()
                        .initializer
                        .iter()
                        .any(|i| i.name.as_deref() == Some(s.name.as_str()))
                    {
                        return Err(GradError::Config(format!("initializer '{}' vanished", s.name)));
                    }
                    patch.set_initializer(t);
                }
            }
        }
        patch.apply(m.graph_mut())?;
        Ok(m)
    }

    /// Initial values of every state tensor, in `state` order.
    pub fn initial_values(&self) -> Vec<Vec<f32>> {
        self.state.iter().map(|s| s.init.clone()).collect()
    }
}
