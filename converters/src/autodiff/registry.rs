//! The one table of op rules. Each op file exports a `RULE`; registering an op twice is an error.

use std::collections::HashMap;

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{GradError, Result};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops;
use crate::proto::NodeProto;

/// Static output infos from input infos (`None` for an absent optional input).
pub type InferFn = fn(&NodeProto, &[Option<&ValInfo>]) -> Result<Vec<ValInfo>>;
/// Local VJP: incoming gradients per output (`None` where no gradient flows) → gradient per input.
pub type GradFn = fn(&mut GradCx, &NodeProto, &[Option<String>]) -> Result<Vec<Option<String>>>;
/// A training-mode forward that replaces the node in the train-step graph (BN with batch statistics).
pub type ForwardFn = fn(&mut GradCx, &NodeProto) -> Result<bool>;

#[derive(Clone, Copy)]
pub enum Grad {
    /// Gradient stops here (shape arithmetic, integer ops).
    NonDifferentiable,
    Rule(GradFn),
}

#[derive(Clone, Copy)]
pub struct Rule {
    pub op_type: &'static str,
    pub infer: InferFn,
    pub grad: Grad,
    pub forward_train: Option<ForwardFn>,
    /// Input slots that hold learnable weights when fed by a constant (Conv W/B, Gemm B/C, BN scale/bias…).
    pub param_slots: &'static [usize],
}

pub struct Registry {
    rules: HashMap<&'static str, Rule>,
}

impl Registry {
    pub fn from_rules(rules: &[Rule]) -> Result<Self> {
        let mut map = HashMap::new();
        for r in rules {
            if map.insert(r.op_type, *r).is_some() {
                return Err(GradError::DuplicateRule(r.op_type.into()));
            }
        }
        Ok(Registry { rules: map })
    }

    pub fn get(&self, op_type: &str) -> Option<&Rule> {
        self.rules.get(op_type)
    }

    pub fn op_types(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.rules.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Every rule `autodiff` knows.
pub fn registry() -> Result<Registry> {
    Registry::from_rules(ops::ALL)
}
