//! [`StepSession`]: a train-step graph in one ONNX Runtime session plus the state it carries between steps
//! (parameters, optimizer slots, BN running statistics).

use anyhow::{Context, Result, bail};
use converters::autodiff::TrainStep;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::runtime::{Feed, Runner, RuntimeConfig};

pub struct StepSession {
    pub step: TrainStep,
    runner: Runner,
    /// Current values, one per `step.state` entry.
    pub state: Vec<ArrayD<f32>>,
    /// AdamW's t of the next step (1-based); counts steps taken for every optimizer.
    pub steps_taken: u64,
}

/// What one step returns besides the new state.
pub struct StepOut {
    pub loss: f32,
    pub logits: ArrayD<f32>,
}

impl StepSession {
    pub fn new(step: TrainStep, config: &RuntimeConfig) -> Result<Self> {
        let bytes = converters::Model::new(step.model.clone()).to_inline_bytes()?;
        let runner = Runner::from_bytes(&bytes, "<train-step>", config).context("loading the train-step graph")?;
        let state = step
            .state
            .iter()
            .map(|s| {
                let shape: Vec<usize> = s.dims.iter().map(|&d| d as usize).collect();
                ArrayD::from_shape_vec(IxDyn(&shape), s.init.clone())
                    .with_context(|| format!("initial value of '{}'", s.name))
            })
            .collect::<Result<_>>()?;
        Ok(StepSession {
            step,
            runner,
            state,
            steps_taken: 0,
        })
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    fn run_raw(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, i64>,
        lr: f32,
        state: &[ArrayD<f32>],
        fetch: &[&str],
    ) -> Result<crate::runtime::Outputs> {
        let lr_a = ndarray::arr0(lr).into_dyn();
        let t_a = ndarray::arr0((self.steps_taken + 1) as f32).into_dyn();
        let mut feeds: Vec<(&str, Feed<'_>)> = vec![
            (self.step.batch_input.as_str(), Feed::F32(x)),
            (self.step.label_input.as_str(), Feed::I64(y)),
            (self.step.lr_input.as_str(), Feed::F32(lr_a.view())),
        ];
        if let Some(t) = &self.step.step_input {
            feeds.push((t.as_str(), Feed::F32(t_a.view())));
        }
        for (s, v) in self.step.state.iter().zip(state) {
            feeds.push((s.input.as_str(), Feed::F32(v.view())));
        }
        Ok(self.runner.run_select(&feeds, fetch)?)
    }

    /// One optimizer step on a batch. The state is only replaced when the loss is finite, so a divergent step
    /// leaves the last good values in place.
    pub fn train_step(&mut self, x: ArrayViewD<'_, f32>, y: ArrayViewD<'_, i64>, lr: f32) -> Result<StepOut> {
        let state = std::mem::take(&mut self.state);
        let result = self.run_raw(x, y, lr, &state, &[]);
        let mut out = match result {
            Ok(o) => o,
            Err(e) => {
                self.state = state;
                return Err(e);
            }
        };
        let loss = out
            .get(&self.step.loss_output)?
            .iter()
            .copied()
            .next()
            .unwrap_or(f32::NAN);
        if !loss.is_finite() {
            self.state = state;
            return Ok(StepOut {
                loss,
                logits: ArrayD::zeros(IxDyn(&[0])),
            });
        }
        let mut next = Vec::with_capacity(state.len());
        for s in &self.step.state {
            next.push(out.take(&s.output)?);
        }
        self.state = next;
        self.steps_taken += 1;
        Ok(StepOut {
            loss,
            logits: out.take(&self.step.logits_output)?,
        })
    }

    /// Loss (and the named extra outputs, e.g. gradients) at `state` without changing anything.
    pub fn evaluate(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, i64>,
        state: &[ArrayD<f32>],
        extra: &[&str],
    ) -> Result<(f32, Vec<ArrayD<f32>>)> {
        if state.len() != self.step.state.len() {
            bail!(
                "{} state tensors given, the step has {}",
                state.len(),
                self.step.state.len()
            );
        }
        let loss_name = self.step.loss_output.clone();
        let mut fetch = vec![loss_name.as_str()];
        fetch.extend(extra);
        let mut out = self.run_raw(x, y, 0.0, state, &fetch)?;
        let loss = out.get(&loss_name)?.iter().copied().next().unwrap_or(f32::NAN);
        let extras = extra.iter().map(|n| out.take(n)).collect::<Result<Vec<_>, _>>()?;
        Ok((loss, extras))
    }

    /// The inference model with the current weights and running statistics.
    pub fn inference_model(&self) -> Result<converters::Model> {
        let values: Vec<Vec<f32>> = self.state.iter().map(|a| a.iter().copied().collect()).collect();
        Ok(self.step.to_inference(&values)?)
    }
}
