//! A model prepared for analysis: the chosen layers (and rectifier inputs) exposed as extra graph outputs, one
//! ONNX Runtime session reused for every batch, and one accumulator per layer.

use std::collections::HashSet;

use converters::Model;
use converters::ir::expose::expose_outputs;
use ndarray::ArrayD;
use rayon::prelude::*;

use super::error::RichnessError;
use super::layer_stats::{LayerAccum, RichnessOptions};
use super::layers::{LayerSelect, select_layers};
use crate::runtime::{Feed, Runner, RuntimeConfig, fmt_dims};
use converters::ir::Patch;
use converters::ir::build::{Attr, GraphBuilder};
use converters::proto::tensor_proto::DataType;

/// One batch: inputs `[N, …]` and, when known, labels.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: ArrayD<f32>,
    pub labels: Option<Vec<u32>>,
}

pub struct ModelCapture {
    pub name: String,
    /// sha256 of the model file as given (before outputs were exposed).
    pub sha256: String,
    runner: Runner,
    input: String,
    pub input_signature: String,
    /// The model's own first output (logits), for accuracy next to the richness numbers.
    logits: Option<String>,
    fetch: Vec<String>,
    /// Per layer: the `[N, C]` outputs Σ relu(−x) and Σ|x| (over positions) of the rectifier input.
    neg_sums: Vec<Option<(String, String)>>,
    pub accs: Vec<LayerAccum>,
    pub correct: u64,
    pub scored: u64,
    /// Activations a conversion removed (the model's `ratio.removed` metadata).
    pub removed: Vec<String>,
}

/// The single non-initializer input of a graph, or an error naming what was found.
pub fn data_input(model: &Model) -> Result<(String, String), RichnessError> {
    let g = model.graph();
    let inits: HashSet<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let inputs: Vec<_> = g
        .input
        .iter()
        .filter(|v| v.name.as_deref().is_some_and(|n| !inits.contains(n)))
        .collect();
    match inputs.as_slice() {
        [one] => {
            let dims = converters::ir::build::value_info_dims(one).unwrap_or_default();
            let name = one.name.clone().unwrap_or_default();
            Ok((name.clone(), format!("{name}{}", fmt_dims(&dims))))
        }
        _ => Err(RichnessError::Inputs {
            model: model.display_name(),
            found: inputs
                .iter()
                .filter_map(|v| v.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

impl ModelCapture {
    pub fn new(
        model: &Model,
        sha256: String,
        select: &LayerSelect,
        config: &RuntimeConfig,
    ) -> Result<Self, RichnessError> {
        let layers = select_layers(model, select)?;
        let (input, input_signature) = data_input(model)?;
        let logits = model.graph().output.first().and_then(|o| o.name.clone());
        let mut fetch: Vec<String> = Vec::new();
        for l in &layers {
            if !fetch.contains(&l.output) {
                fetch.push(l.output.clone());
            }
        }
        let mut exposed = model.clone();
        expose_outputs(&mut exposed, &fetch).map_err(|e| RichnessError::Graph {
            model: model.display_name(),
            reason: e.to_string(),
        })?;
        // Negative mass is reduced inside the graph to per-(sample, channel) sums of relu(−x) and |x| over the
        // spatial positions: exporting each pre-activation would copy a second full tensor per layer out of ONNX
        // Runtime. The f32 partial sums stay short (one plane); the rest is summed in f64 here.
        let opset = exposed.opset();
        let mut b = GraphBuilder::reserving(exposed.graph());
        let mut neg_sums = Vec::with_capacity(layers.len());
        let to_ncs = b.init_i64("richness_ncs_shape", &[3], &[0, 0, -1]);
        let axes = b.init_i64("richness_axes", &[1], &[2]);
        for l in &layers {
            neg_sums.push(l.act_input.as_ref().map(|x| {
                let plane_sum = |b: &mut GraphBuilder, v: &str, base: &str| {
                    let ncs = b.op("Reshape", "richness_ncs", &[v, &to_ncs], vec![]);
                    if opset >= 13 {
                        b.op("ReduceSum", base, &[&ncs, &axes], vec![("keepdims", Attr::Int(0))])
                    } else {
                        b.op(
                            "ReduceSum",
                            base,
                            &[&ncs],
                            vec![("axes", Attr::Ints(vec![2])), ("keepdims", Attr::Int(0))],
                        )
                    }
                };
                let neg = b.op("Neg", "richness_neg", &[x], vec![]);
                let part = b.op("Relu", "richness_negpart", &[&neg], vec![]);
                let s_neg = plane_sum(&mut b, &part, "richness_negsum");
                let abs = b.op("Abs", "richness_abs", &[x], vec![]);
                let s_abs = plane_sum(&mut b, &abs, "richness_abssum");
                (s_neg, s_abs)
            }));
        }
        for (s_neg, s_abs) in neg_sums.iter().flatten() {
            for name in [s_neg, s_abs] {
                b.output(name, DataType::Float, &[None, None]);
                fetch.push(name.clone());
            }
        }
        let mut p = Patch::new();
        p.add_part(b.finish()).note("negative-mass reductions");
        p.apply(exposed.graph_mut()).map_err(|e| RichnessError::Graph {
            model: model.display_name(),
            reason: e.to_string(),
        })?;
        let runner = Runner::from_model(&exposed, config)?;
        if let Some(l) = &logits {
            fetch.push(l.clone());
        }
        Ok(ModelCapture {
            name: model.display_name(),
            sha256,
            runner,
            input,
            input_signature,
            logits,
            fetch,
            neg_sums,
            accs: layers.into_iter().map(LayerAccum::new).collect(),
            correct: 0,
            scored: 0,
            removed: model
                .metadata("ratio.removed")
                .map(|r| r.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Run one batch through ONNX Runtime and return the fetched values (for timing runs apart from statistics).
    pub fn run(&mut self, batch: &Batch) -> Result<crate::runtime::Outputs, RichnessError> {
        let names: Vec<&str> = self.fetch.iter().map(String::as_str).collect();
        Ok(self
            .runner
            .run_select(&[(self.input.as_str(), Feed::F32(batch.x.view()))], &names)?)
    }

    /// Layer `i`'s (negative, total) pre-activation L1 mass in this batch's outputs, for rectifier layers.
    pub fn negative_sums(&self, out: &crate::runtime::Outputs, i: usize) -> Result<Option<(f64, f64)>, RichnessError> {
        let scalar = |name: &str| -> Result<f64, RichnessError> { Ok(out.get(name)?.iter().map(|&v| v as f64).sum()) };
        match self.neg_sums.get(i).and_then(Option::as_ref) {
            Some((n, t)) => Ok(Some((scalar(n)?, scalar(t)?))),
            None => Ok(None),
        }
    }

    /// Fold one batch's outputs into every layer's statistics (layers in parallel).
    pub fn accumulate(
        &mut self,
        out: &crate::runtime::Outputs,
        batch: &Batch,
        first_index: u64,
        opts: &RichnessOptions,
    ) -> Result<(), RichnessError> {
        let name = self.name.clone();
        let labels = batch.labels.as_deref();
        let mut views = Vec::with_capacity(self.accs.len());
        for (i, acc) in self.accs.iter().enumerate() {
            let o = out.get(&acc.layer.output)?;
            views.push((o.view(), self.negative_sums(out, i)?));
        }
        self.accs
            .par_iter_mut()
            .zip(views)
            .try_for_each(|(acc, (o, pre))| acc.push(&name, o, pre, labels, first_index, opts))?;
        if let (Some(l), Some(labels)) = (&self.logits, labels)
            && let Ok(logits) = out.get(l)
            && logits.ndim() == 2
            && logits.shape()[0] == labels.len()
        {
            for (row, &y) in logits.outer_iter().zip(labels) {
                let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
                self.correct += u64::from(best == Some(y as usize));
            }
            self.scored += labels.len() as u64;
        }
        Ok(())
    }
}
