//! [`ResidentSession`]: the device-resident train step. Parameters and optimizer state stay in session memory
//! (`runtime::Resident`, two alternating IoBinding buffer sets); each step uploads the batch, the labels, the
//! learning rate (and AdamW's t) and reads back the loss, plus the logits when asked. The state crosses to the
//! host only for checkpoints, validation and export. A non-finite loss is not committed, so the last good set
//! stays current. On the CPU EP it computes bit for bit what [`crate::train::StepSession`] computes.

use anyhow::{Context, Result};
use converters::autodiff::TrainStep;
use ndarray::{ArrayD, IxDyn};

use crate::runtime::{Buffers, Resident, RuntimeConfig, StateSlot, Upload};
use crate::train::session::{StepOut, Stepper, check_state_layout, initial_state, step_runner};

pub struct ResidentSession {
    step: TrainStep,
    inner: Resident,
    steps_taken: u64,
    release_next: bool,
}

impl ResidentSession {
    pub fn new(step: TrainStep, config: &RuntimeConfig) -> Result<Self> {
        Self::with_buffers(step, config, Buffers::PingPong)
    }

    /// [`ResidentSession::new`] with another buffer wiring; [`Buffers::Aliased`] is wrong on purpose and exists
    /// for the test that shows aliasing is caught.
    #[doc(hidden)]
    pub fn with_buffers(step: TrainStep, config: &RuntimeConfig, buffers: Buffers) -> Result<Self> {
        let runner = step_runner(&step, config)?;
        let slots = step
            .state
            .iter()
            .map(|s| StateSlot {
                input: s.input.clone(),
                output: s.output.clone(),
                dims: s.dims.iter().map(|&d| d as usize).collect(),
            })
            .collect();
        let init = initial_state(&step)?;
        let inner = Resident::new(
            runner,
            slots,
            &init,
            &[step.loss_output.as_str()],
            &[step.logits_output.as_str()],
            buffers,
        )
        .context("binding the train step's state to session memory")?;
        Ok(ResidentSession {
            step,
            inner,
            steps_taken: 0,
            release_next: false,
        })
    }

    pub fn resident(&self) -> &Resident {
        &self.inner
    }
}

impl Stepper for ResidentSession {
    fn step(&self) -> &TrainStep {
        &self.step
    }

    fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    fn advance(&mut self, x: ArrayD<f32>, y: ArrayD<i64>, lr: f32, want_logits: bool) -> Result<StepOut> {
        let scalar = |v: f32| ArrayD::from_elem(IxDyn(&[]), v);
        let mut feeds = vec![
            (self.step.batch_input.as_str(), Upload::F32(x)),
            (self.step.label_input.as_str(), Upload::I64(y)),
            (self.step.lr_input.as_str(), Upload::F32(scalar(lr))),
        ];
        if let Some(t) = &self.step.step_input {
            feeds.push((t.as_str(), Upload::F32(scalar((self.steps_taken + 1) as f32))));
        }
        let release = std::mem::take(&mut self.release_next);
        let mut out = self.inner.run(feeds, want_logits, release)?;
        let loss = out
            .get(&self.step.loss_output)?
            .iter()
            .copied()
            .next()
            .unwrap_or(f32::NAN);
        if !loss.is_finite() {
            return Ok(StepOut { loss, logits: None });
        }
        self.inner.commit();
        self.steps_taken += 1;
        let logits = if want_logits {
            Some(out.take(&self.step.logits_output)?)
        } else {
            None
        };
        Ok(StepOut { loss, logits })
    }

    fn release_after_next(&mut self) {
        self.release_next = true;
    }

    fn read_state(&self) -> Result<Vec<ArrayD<f32>>> {
        Ok(self.inner.read_state()?)
    }

    fn load_state(&mut self, state: Vec<ArrayD<f32>>, steps_taken: u64) -> Result<()> {
        check_state_layout(&self.step, &state)?;
        self.inner.write_state(&state)?;
        self.steps_taken = steps_taken;
        Ok(())
    }
}
