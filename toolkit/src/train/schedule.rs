//! Learning-rate schedules, computed in Rust and fed to the graph's `lr` input each step.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    /// Multiply by `gamma` every `step_every` epochs.
    Step,
    /// Cosine from the base rate to 0 over all steps after warm-up.
    Cosine,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f32,
    /// Linear warm-up from base_lr/warmup_steps to base_lr.
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub steps_per_epoch: u64,
    pub step_every_epochs: u64,
    pub gamma: f32,
}

impl Schedule {
    /// Learning rate of global step `t` (0-based).
    pub fn lr_at(&self, t: u64) -> f32 {
        if t < self.warmup_steps {
            return self.base_lr * (t + 1) as f32 / self.warmup_steps as f32;
        }
        match self.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::Step => {
                let epoch = t / self.steps_per_epoch.max(1);
                self.base_lr * self.gamma.powi((epoch / self.step_every_epochs.max(1)) as i32)
            }
            ScheduleKind::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
                let p = (t - self.warmup_steps) as f64 / span as f64;
                (self.base_lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())) as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: ScheduleKind, warmup: u64) -> Schedule {
        Schedule {
            kind,
            base_lr: 0.1,
            warmup_steps: warmup,
            total_steps: 100,
            steps_per_epoch: 10,
            step_every_epochs: 3,
            gamma: 0.1,
        }
    }

    #[test]
    fn warmup_is_linear_then_base() {
        let sc = s(ScheduleKind::Constant, 4);
        let lrs: Vec<f32> = (0..6).map(|t| sc.lr_at(t)).collect();
        assert_eq!(lrs, vec![0.025, 0.05, 0.075, 0.1, 0.1, 0.1]);
    }

    #[test]
    fn step_decays_every_three_epochs() {
        let sc = s(ScheduleKind::Step, 0);
        assert_eq!(sc.lr_at(29), 0.1);
        assert!((sc.lr_at(30) - 0.01).abs() < 1e-9);
        assert!((sc.lr_at(65) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn cosine_starts_at_base_and_ends_near_zero() {
        let sc = s(ScheduleKind::Cosine, 10);
        assert_eq!(sc.lr_at(10), 0.1);
        assert!((sc.lr_at(55) - 0.05).abs() < 1e-6);
        assert!(sc.lr_at(99) < 1e-3);
    }
}
