//! Train-step sessions: a train-step graph in one ONNX Runtime session plus the state it carries between steps
//! (parameters, optimizer slots, BN running statistics). [`StepSession`] keeps the state on the host and feeds
//! it every step (the plain path, and the reference the device-resident one is checked against);
//! [`crate::train::resident::ResidentSession`] keeps it in session memory. The loop drives either through
//! [`Stepper`].

use anyhow::{Context, Result, bail};
use converters::autodiff::TrainStep;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::Serialize;

use crate::runtime::{Feed, Runner, RuntimeConfig};
use crate::train::resident::ResidentSession;

/// Where the state lives between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Residency {
    /// Copied host→session→host every step.
    Host,
    /// Kept in session memory (two alternating IoBinding buffer sets); only the batch, labels and learning rate
    /// go in and only the loss comes out.
    #[default]
    Device,
}

/// What one step returns besides the new state.
pub struct StepOut {
    pub loss: f32,
    /// The batch's logits, when they were asked for and the step succeeded.
    pub logits: Option<ArrayD<f32>>,
}

/// What the training loop needs from a train-step session.
pub trait Stepper {
    fn step(&self) -> &TrainStep;
    /// Optimizer steps taken (AdamW's t of the next step is this + 1).
    fn steps_taken(&self) -> u64;
    /// One optimizer step on a batch (`x` in the step's input shape, `y` one label per sample). The state only
    /// advances when the loss is finite, so a divergent step leaves the last good values in place.
    fn advance(&mut self, x: ArrayD<f32>, y: ArrayD<i64>, lr: f32, want_logits: bool) -> Result<StepOut>;
    /// Ask the next [`Stepper::advance`] to hand the session's free arena memory back after it runs (the loop
    /// does so on an epoch's last step, before validation loads a second session). A no-op where the session
    /// keeps no arena worth shrinking.
    fn release_after_next(&mut self) {}

    /// A host copy of the state, one array per `step().state` entry.
    fn read_state(&self) -> Result<Vec<ArrayD<f32>>>;
    /// Replace the state (e.g. from a checkpoint) and the step count.
    fn load_state(&mut self, state: Vec<ArrayD<f32>>, steps_taken: u64) -> Result<()>;

    /// The inference model with the current weights and running statistics.
    fn inference_model(&self) -> Result<converters::Model> {
        let values: Vec<Vec<f32>> = self.read_state()?.iter().map(|a| a.iter().copied().collect()).collect();
        Ok(self.step().to_inference(&values)?)
    }
}

/// A session for `step` with its state where `residency` says.
pub fn open(step: TrainStep, config: &RuntimeConfig, residency: Residency) -> Result<Box<dyn Stepper>> {
    Ok(match residency {
        Residency::Host => Box::new(StepSession::new(step, config)?),
        Residency::Device => Box::new(ResidentSession::new(step, config)?),
    })
}

/// The session that runs a train-step graph. On the CPU EP its convolutions run on ORT's NCHWc kernels
/// ([`crate::runtime::nchwc`]); the graph the step describes (and `--emit-graph` writes) stays standard ONNX.
pub(crate) fn step_runner(step: &TrainStep, config: &RuntimeConfig) -> Result<Runner> {
    let mut model = converters::Model::new(step.model.clone());
    if let Some(block) = crate::runtime::nchwc::block(config) {
        let lowered = converters::passes::nchwc::lower_convs(&mut model, block)
            .context("lowering the train step's convolutions")?;
        crate::detail!("train step: {lowered} convolution(s) on ONNX Runtime's NCHWc kernels (block {block})");
    }
    let bytes = model.to_inline_bytes()?;
    Runner::from_bytes(&bytes, "<train-step>", config).context("loading the train-step graph")
}

/// Each state tensor's initial value as an array of its shape.
pub(crate) fn initial_state(step: &TrainStep) -> Result<Vec<ArrayD<f32>>> {
    step.state
        .iter()
        .map(|s| {
            let shape: Vec<usize> = s.dims.iter().map(|&d| d as usize).collect();
            ArrayD::from_shape_vec(IxDyn(&shape), s.init.clone())
                .with_context(|| format!("initial value of '{}'", s.name))
        })
        .collect()
}

pub(crate) fn check_state_layout(step: &TrainStep, state: &[ArrayD<f32>]) -> Result<()> {
    if state.len() != step.state.len() {
        bail!("{} state tensors given, the step has {}", state.len(), step.state.len());
    }
    for (s, a) in step.state.iter().zip(state) {
        let want: Vec<usize> = s.dims.iter().map(|&d| d as usize).collect();
        if a.shape() != want.as_slice() {
            bail!("state '{}' is {:?}, the step wants {:?}", s.name, a.shape(), want);
        }
    }
    Ok(())
}

/// The plain path: the state is fed from the host every step and read back after it.
pub struct StepSession {
    pub step: TrainStep,
    runner: Runner,
    /// Current values, one per `step.state` entry.
    pub state: Vec<ArrayD<f32>>,
    /// AdamW's t of the next step (1-based); counts steps taken for every optimizer.
    pub steps_taken: u64,
}

impl StepSession {
    pub fn new(step: TrainStep, config: &RuntimeConfig) -> Result<Self> {
        let runner = step_runner(&step, config)?;
        let state = initial_state(&step)?;
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

    /// One optimizer step on a batch, returning the loss and the logits. The state is only replaced when the loss
    /// is finite, so a divergent step leaves the last good values in place.
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
            return Ok(StepOut { loss, logits: None });
        }
        let mut next = Vec::with_capacity(state.len());
        for s in &self.step.state {
            next.push(out.take(&s.output)?);
        }
        self.state = next;
        self.steps_taken += 1;
        Ok(StepOut {
            loss,
            logits: Some(out.take(&self.step.logits_output)?),
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
        Stepper::inference_model(self)
    }
}

impl Stepper for StepSession {
    fn step(&self) -> &TrainStep {
        &self.step
    }

    fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    fn advance(&mut self, x: ArrayD<f32>, y: ArrayD<i64>, lr: f32, want_logits: bool) -> Result<StepOut> {
        let mut out = self.train_step(x.view(), y.view(), lr)?;
        if !want_logits {
            out.logits = None;
        }
        Ok(out)
    }

    fn read_state(&self) -> Result<Vec<ArrayD<f32>>> {
        Ok(self.state.clone())
    }

    fn load_state(&mut self, state: Vec<ArrayD<f32>>, steps_taken: u64) -> Result<()> {
        check_state_layout(&self.step, &state)?;
        self.state = state;
        self.steps_taken = steps_taken;
        Ok(())
    }
}
