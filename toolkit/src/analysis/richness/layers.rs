//! Which values of a graph are analysed: `auto` takes every activation slot (ReLU, ReLU6, LeakyRelu, PRelu, found
//! by the converter's slot detection) and every block output (a join: residual Add, or a Concat of computed
//! tensors), in graph order; or a list of node/output names; or a regex over those names.
//!
//! Each layer also gets what lets two N:M variants of one network be compared: its block and stage in the slot
//! structure, and its relative depth, the share of weight layers (Conv, ConvTranspose, Gemm, MatMul) before it in
//! graph order. Conversion removes activations only, so that share is the same for a layer in every variant.

use converters::act::{self, ActKind};
use converters::ir::attr::NodeExt;
use converters::ir::index::GraphIndex;
use converters::proto::{GraphProto, NodeProto};
use converters::{Model, slots};
use reports::schema::richness::LayerKind;
use serde::Serialize;

use super::error::RichnessError;

#[derive(Debug, Clone)]
pub enum LayerSelect {
    Auto,
    Names(Vec<String>),
    Regex(regex::Regex),
}

impl LayerSelect {
    /// `auto`, `re:<regex>`, or a comma-separated list of names.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s == "auto" {
            return Ok(LayerSelect::Auto);
        }
        if let Some(re) = s.strip_prefix("re:") {
            return regex::Regex::new(re)
                .map(LayerSelect::Regex)
                .map_err(|e| format!("bad --layers regex '{re}': {e}"));
        }
        Ok(LayerSelect::Names(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    /// Node name (or its first output when the exporter left names empty): the key used everywhere.
    pub name: String,
    pub op: String,
    pub output: String,
    /// For rectifiers: the pre-activation value (negative mass is measured there).
    pub act_input: Option<String>,
    pub act_kind: Option<ActKind>,
    /// Position among the selected layers.
    pub depth: usize,
    pub kind: Option<LayerKind>,
    pub block: Option<usize>,
    pub stage: Option<usize>,
    /// Weight layers before this one over all weight layers, in [0, 1].
    pub relative_depth: Option<f64>,
}

impl Layer {
    pub fn is_activation(&self) -> bool {
        self.act_kind.is_some()
    }
}

fn layer_of(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> Option<Layer> {
    let output = n.output.first().filter(|o| !o.is_empty())?.clone();
    let act_kind = act::classify(g, ix, n);
    Some(Layer {
        name: n.name_or_output().to_string(),
        op: n.op().to_string(),
        output,
        act_input: act_kind.and_then(|_| n.input.first().cloned()),
        act_kind,
        depth: 0,
        kind: None,
        block: None,
        stage: None,
        relative_depth: None,
    })
}

const WEIGHT_OPS: [&str; 4] = ["Conv", "ConvTranspose", "Gemm", "MatMul"];

/// Kind, block, stage and relative depth of each selected layer (see the module docs).
fn place(g: &GraphProto, ix: &GraphIndex, layers: &mut [Layer]) {
    let st = slots::detect(g, &ActKind::ALL);
    let slot_of: std::collections::HashMap<&str, &slots::Slot> =
        st.slots.iter().map(|s| (s.name.as_str(), s)).collect();
    let total = g.node.iter().filter(|n| WEIGHT_OPS.contains(&n.op())).count();
    let node_of: std::collections::HashMap<&str, usize> = g
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name_or_output(), i))
        .collect();
    for l in layers.iter_mut() {
        let Some(&i) = node_of.get(l.name.as_str()) else {
            continue;
        };
        let before = g.node[..i].iter().filter(|n| WEIGHT_OPS.contains(&n.op())).count();
        l.relative_depth = (total > 0).then(|| before as f64 / total as f64);
        if let Some(s) = slot_of.get(l.name.as_str()) {
            (l.kind, l.block, l.stage) = (Some(LayerKind::Activation), Some(s.block), Some(s.stage));
        } else if slots::is_join(g, ix, &g.node[i]) {
            // A join closes the block of the activations before it (post- and pre-activation orders alike).
            let last = st.slots.iter().filter(|s| s.node < i).max_by_key(|s| s.node);
            (l.kind, l.block, l.stage) = (Some(LayerKind::Join), last.map(|s| s.block), last.map(|s| s.stage));
        }
    }
}

/// Resolve `select` on `model`. Names match node names or output names; unknown names are an error listing them.
pub fn select_layers(model: &Model, select: &LayerSelect) -> Result<Vec<Layer>, RichnessError> {
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let mut layers: Vec<Layer> = match select {
        LayerSelect::Auto => {
            let st = slots::detect(g, &ActKind::ALL);
            let slot_nodes: std::collections::HashSet<usize> = st.slots.iter().map(|s| s.node).collect();
            g.node
                .iter()
                .enumerate()
                .filter(|(i, n)| slot_nodes.contains(i) || slots::is_join(g, &ix, n))
                .filter_map(|(_, n)| layer_of(g, &ix, n))
                .collect()
        }
        LayerSelect::Names(names) => {
            let mut missing = Vec::new();
            let mut found = Vec::new();
            for name in names {
                match g
                    .node
                    .iter()
                    .find(|n| n.name_or_output() == name || n.output.iter().any(|o| o == name))
                {
                    Some(n) => found.extend(layer_of(g, &ix, n)),
                    None => missing.push(format!("'{name}'")),
                }
            }
            if !missing.is_empty() {
                let auto = select_layers(model, &LayerSelect::Auto).unwrap_or_default();
                let mut cands: Vec<String> = auto.into_iter().map(|l| l.name).take(12).collect();
                if cands.is_empty() {
                    cands.push("none".into());
                }
                return Err(RichnessError::UnknownLayers {
                    model: model.display_name(),
                    names: missing.join(", "),
                    candidates: cands.join(", "),
                });
            }
            found
        }
        LayerSelect::Regex(re) => {
            let found: Vec<Layer> = g
                .node
                .iter()
                .filter(|n| re.is_match(n.name_or_output()) || n.output.iter().any(|o| re.is_match(o)))
                .filter_map(|n| layer_of(g, &ix, n))
                .collect();
            if found.is_empty() {
                return Err(RichnessError::NoMatch {
                    model: model.display_name(),
                    pattern: re.as_str().to_string(),
                });
            }
            found
        }
    };
    for (d, l) in layers.iter_mut().enumerate() {
        l.depth = d;
    }
    place(g, &ix, &mut layers);
    Ok(layers)
}

/// The rectifier layers of a model (for analyses that need them); an error when there are none.
pub fn activation_layers(model: &Model, what: &str) -> Result<Vec<Layer>, RichnessError> {
    let acts: Vec<Layer> = select_layers(model, &LayerSelect::Auto)?
        .into_iter()
        .filter(Layer::is_activation)
        .collect();
    if acts.is_empty() {
        return Err(RichnessError::NoActivations {
            model: model.display_name(),
            what: what.to_string(),
        });
    }
    Ok(acts)
}
