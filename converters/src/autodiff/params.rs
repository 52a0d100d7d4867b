//! Which tensors train. A parameter is a float32 constant (initializer, or Constant node, possibly seen through
//! Identity) that feeds a rule's parameter slot (Conv W/B, Gemm B/C, BN scale/bias, PRelu slope, MatMul and
//! elementwise operands). `--freeze` removes matches, `--train-only` keeps only matches. In BN training mode the
//! running mean/variance become state tensors updated by the step.

use std::collections::HashSet;

use regex::Regex;

use crate::autodiff::error::Result;
use crate::autodiff::registry::Registry;
use crate::autodiff::step::StateKind;
use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ir::{Model, tensor};
use crate::proto::tensor_proto::DataType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Initializer,
    /// Index of the Constant node that produces it.
    Constant(usize),
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub origin: Origin,
    pub dims: Vec<i64>,
    pub values: Vec<f32>,
}

#[derive(Debug, Default)]
pub struct Selection {
    pub trainable: Vec<Source>,
    pub running: Vec<(Source, StateKind)>,
}

/// The constant float32 tensor behind `value`, looking through Identity nodes.
fn source_of(model: &Model, ix: &GraphIndex, value: &str) -> Result<Option<Source>> {
    let g = model.graph();
    let mut v = value.to_string();
    for _ in 0..16 {
        if let Some(t) = ix.initializer(g, &v) {
            if t.data_type != Some(DataType::Float as i32) {
                return Ok(None);
            }
            let raw = model.tensor_bytes(t)?;
            return Ok(Some(Source {
                name: v,
                origin: Origin::Initializer,
                dims: t.dims.clone(),
                values: tensor::to_f32(t, raw.as_ref())?,
            }));
        }
        let Some(&(ni, _)) = ix.producer.get(&v) else {
            return Ok(None);
        };
        let n = &g.node[ni];
        match n.op() {
            "Identity" => v = n.input[0].clone(),
            "Constant" => {
                let Some(t) = n.get_t("value")? else { return Ok(None) };
                if t.data_type != Some(DataType::Float as i32) {
                    return Ok(None);
                }
                return Ok(Some(Source {
                    name: v,
                    origin: Origin::Constant(ni),
                    dims: t.dims.clone(),
                    values: tensor::to_f32(t, None)?,
                }));
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

pub fn select(
    model: &Model,
    reg: &Registry,
    freeze: Option<&Regex>,
    train_only: Option<&Regex>,
    bn_train: bool,
) -> Result<Selection> {
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let mut seen = HashSet::new();
    let mut sel = Selection::default();
    for n in &g.node {
        let Some(rule) = reg.get(n.op()) else { continue };
        for &slot in rule.param_slots {
            let Some(inp) = n.input.get(slot).filter(|s| !s.is_empty()) else {
                continue;
            };
            let Some(src) = source_of(model, &ix, inp)? else {
                continue;
            };
            if seen.contains(&src.name) {
                continue;
            }
            seen.insert(src.name.clone());
            let frozen =
                freeze.is_some_and(|r| r.is_match(&src.name)) || train_only.is_some_and(|r| !r.is_match(&src.name));
            if !frozen {
                sel.trainable.push(src);
            }
        }
        if bn_train && n.op() == "BatchNormalization" {
            for (slot, kind) in [(3, StateKind::RunningMean), (4, StateKind::RunningVar)] {
                let Some(inp) = n.input.get(slot) else { continue };
                if let Some(src) = source_of(model, &ix, inp)?
                    && seen.insert(src.name.clone())
                {
                    sel.running.push((src, kind));
                }
            }
        }
    }
    Ok(sel)
}
