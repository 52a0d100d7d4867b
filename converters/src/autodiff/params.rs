//! Which tensors train. A parameter is a float32 constant (initializer, or Constant node, possibly seen through
//! Identity) that feeds a rule's parameter slot (Conv W/B, Gemm B/C, BN scale/bias, PRelu slope, MatMul and
//! elementwise operands). `--freeze` removes matches, `--train-only` keeps only matches. In BN training mode the
//! running mean/variance become state tensors updated by the step.

use std::collections::HashSet;

use regex::Regex;

use crate::autodiff::error::{GradError, Result};
use crate::autodiff::registry::Registry;
use crate::autodiff::step::StateKind;
use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ir::{Model, tensor};
use crate::proto::GraphProto;
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

/// The float32 constant behind `value`, looking through Identity nodes: its name and where it lives.
pub(crate) fn constant_behind(g: &GraphProto, ix: &GraphIndex, value: &str) -> Option<(String, Origin)> {
    let float = Some(DataType::Float as i32);
    let mut v = value;
    for _ in 0..16 {
        if let Some(t) = ix.initializer(g, v) {
            return (t.data_type == float).then(|| (v.to_string(), Origin::Initializer));
        }
        let &(ni, _) = ix.producer.get(v)?;
        let n = &g.node[ni];
        match n.op() {
            "Identity" => v = n.input.first()?,
            "Constant" => {
                let t = n.get_t("value").ok().flatten()?;
                return (t.data_type == float).then(|| (v.to_string(), Origin::Constant(ni)));
            }
            _ => return None,
        }
    }
    None
}

/// Dims and values of the constant `name` found by [`constant_behind`].
pub(crate) fn constant_values(model: &Model, name: &str, origin: &Origin) -> Result<(Vec<i64>, Vec<f32>)> {
    let g = model.graph();
    let t = match origin {
        Origin::Initializer => g.initializer.iter().find(|t| t.name.as_deref() == Some(name)),
        Origin::Constant(i) => g.node[*i].get_t("value")?,
    }
    .ok_or_else(|| GradError::Config(format!("constant '{name}' vanished")))?;
    let raw = match origin {
        Origin::Initializer => model.tensor_bytes(t)?,
        Origin::Constant(_) => None,
    };
    Ok((t.dims.clone(), tensor::to_f32(t, raw.as_ref())?))
}

fn source_of(model: &Model, ix: &GraphIndex, value: &str) -> Result<Option<Source>> {
    let Some((name, origin)) = constant_behind(model.graph(), ix, value) else {
        return Ok(None);
    };
    let (dims, values) = constant_values(model, &name, &origin)?;
    Ok(Some(Source {
        name,
        origin,
        dims,
        values,
    }))
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
        let Some(spec) = reg.of(n) else { continue };
        for &slot in spec.param_slots {
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
        if bn_train {
            for &(slot, kind) in spec.state_slots {
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
