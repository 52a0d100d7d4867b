//! Optimizers as graph nodes, with PyTorch semantics. Weight decay applies to weights only (rank ≥ 2), not to
//! biases or BatchNorm scales.
//!   SGD: g' = g + wd·w;  v' = μ·v + g';  w' = w − lr·v'  (Nesterov: w' = w − lr·(g' + μ·v')).
//!   AdamW: w ← w − lr·wd·w;  m' = β1·m + (1−β1)·g;  v' = β2·v + (1−β2)·g²;
//!          w' = w − lr·(m'/(1−β1ᵗ)) / (√(v'/(1−β2ᵗ)) + eps), with t fed as a float input each step.

use serde::{Deserialize, Serialize};

use crate::autodiff::cx::GradCx;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Optimizer {
    Sgd {
        momentum: f32,
        nesterov: bool,
        weight_decay: f32,
    },
    Adamw {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl Optimizer {
    /// Names of the per-parameter state slots this optimizer keeps.
    pub fn slots(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Sgd { momentum, .. } if *momentum == 0.0 => &[],
            Optimizer::Sgd { .. } => &["momentum"],
            Optimizer::Adamw { .. } => &["adam_m", "adam_v"],
        }
    }

    pub fn needs_step(&self) -> bool {
        matches!(self, Optimizer::Adamw { .. })
    }
}

/// Per-step scalars shared by every parameter update.
pub struct StepInputs {
    pub lr: String,
    pub step: Option<String>,
    /// 1/(1−β1ᵗ) and 1/(1−β2ᵗ), built once from `step` for AdamW.
    pub bias_corr: Option<(String, String)>,
}

impl StepInputs {
    pub fn new(cx: &mut GradCx, opt: &Optimizer, lr: String, step: Option<String>) -> Self {
        let bias_corr = match (opt, &step) {
            (Optimizer::Adamw { beta1, beta2, .. }, Some(t)) => {
                let mut corr = |beta: f32| {
                    let b = cx.scalar(beta);
                    let pw = cx.op("Pow", "adam_pow", &[&b, t], vec![]);
                    let one = cx.scalar(1.0);
                    let d = cx.op("Sub", "adam_bc", &[&one, &pw], vec![]);
                    cx.op("Reciprocal", "adam_inv_bc", &[&d], vec![])
                };
                Some((corr(*beta1), corr(*beta2)))
            }
            _ => None,
        };
        StepInputs { lr, step, bias_corr }
    }
}

/// Emit one parameter's update; returns the new parameter and the new state slots (in `slots()` order).
pub fn update(
    cx: &mut GradCx,
    opt: &Optimizer,
    si: &StepInputs,
    w: &str,
    g: &str,
    state: &[String],
    rank: usize,
) -> (String, Vec<String>) {
    match *opt {
        Optimizer::Sgd {
            momentum,
            nesterov,
            weight_decay,
        } => {
            let g1 = if weight_decay > 0.0 && rank >= 2 {
                let wd = cx.scalar(weight_decay);
                let d = cx.mul(w, &wd);
                cx.op("Add", "sgd_g", &[g, &d], vec![])
            } else {
                g.to_string()
            };
            let (step, new_state) = if momentum != 0.0 {
                let mu = cx.scalar(momentum);
                let vm = cx.mul(&state[0], &mu);
                let v1 = cx.op("Add", "sgd_v", &[&vm, &g1], vec![]);
                let step = if nesterov {
                    let mv = cx.mul(&v1, &mu);
                    cx.op("Add", "sgd_nesterov", &[&g1, &mv], vec![])
                } else {
                    v1.clone()
                };
                (step, vec![v1])
            } else {
                (g1, vec![])
            };
            let d = cx.mul(&step, &si.lr);
            (cx.op("Sub", "sgd_w", &[w, &d], vec![]), new_state)
        }
        Optimizer::Adamw {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let w0 = if weight_decay > 0.0 && rank >= 2 {
                let wd = cx.scalar(weight_decay);
                let lw = cx.mul(w, &si.lr);
                let d = cx.mul(&lw, &wd);
                cx.op("Sub", "adamw_decay", &[w, &d], vec![])
            } else {
                w.to_string()
            };
            let (b1, nb1, b2, nb2) = (
                cx.scalar(beta1),
                cx.scalar(1.0 - beta1),
                cx.scalar(beta2),
                cx.scalar(1.0 - beta2),
            );
            let m_old = cx.mul(&state[0], &b1);
            let m_new = cx.mul(g, &nb1);
            let m1 = cx.op("Add", "adam_m", &[&m_old, &m_new], vec![]);
            let gg = cx.mul(g, g);
            let v_old = cx.mul(&state[1], &b2);
            let v_new = cx.mul(&gg, &nb2);
            let v1 = cx.op("Add", "adam_v", &[&v_old, &v_new], vec![]);
            let (c1, c2) = si.bias_corr.clone().unwrap_or_else(|| (cx.scalar(1.0), cx.scalar(1.0)));
            let mh = cx.mul(&m1, &c1);
            let vh = cx.mul(&v1, &c2);
            let sd = cx.op("Sqrt", "adam_sd", &[&vh], vec![]);
            let e = cx.scalar(eps);
            let den = cx.op("Add", "adam_den", &[&sd, &e], vec![]);
            let q = cx.op("Div", "adam_q", &[&mh, &den], vec![]);
            let d = cx.mul(&q, &si.lr);
            (cx.op("Sub", "adamw_w", &[&w0, &d], vec![]), vec![m1, v1])
        }
    }
}
