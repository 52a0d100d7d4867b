//! Which layers calibration refits: the model is compared with its reference node by node (the converter keeps
//! node and value names), the nodes that differ and everything downstream of them are *affected*, and the
//! affected linear layers are refit in waves — a layer's wave is the number of refit layers on its longest
//! path from the input, so layers of one wave never feed each other and share one pass over the data.

use std::collections::HashMap;

use converters::Model;
use converters::act;
use converters::ir::GraphIndex;
use converters::ir::attr::NodeExt;
use converters::ir::index::outer_refs;

use super::CalibError;
use super::linear::Linear;

/// A layer to refit.
#[derive(Debug, Clone)]
pub struct Target {
    pub linear: Linear,
    pub wave: usize,
    /// Its output is read only by a BatchNormalization (which AdaBN renormalizes instead).
    pub bn_follows: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Reference activations the model removed or changed.
    pub removed: Vec<String>,
    pub targets: Vec<Target>,
    /// Affected nodes with constant-looking weights that cannot be refit (weights computed at run time).
    pub skipped: Vec<String>,
}

/// Activations of `reference` that `model` no longer has in the same form.
pub fn removed_activations(model: &Model, reference: &Model) -> Vec<String> {
    let (g, r) = (model.graph(), reference.graph());
    let rix = GraphIndex::new(r);
    let by_name: HashMap<&str, &converters::proto::NodeProto> =
        g.node.iter().map(|n| (n.name_or_output(), n)).collect();
    r.node
        .iter()
        .filter(|n| act::classify(r, &rix, n).is_some())
        .filter(|n| {
            by_name
                .get(n.name_or_output())
                .is_none_or(|m| m.op() != n.op() || m.attribute != n.attribute)
        })
        .map(|n| n.name_or_output().to_string())
        .collect()
}

/// The refit plan of `model` against `reference`, with every target's output checked to exist in the reference.
pub fn plan(model: &Model, reference: &Model) -> Result<Plan, CalibError> {
    let (g, r) = (model.graph(), reference.graph());
    let ix = GraphIndex::new(g);
    let rix = GraphIndex::new(r);
    let by_name: HashMap<&str, &converters::proto::NodeProto> =
        r.node.iter().map(|n| (n.name_or_output(), n)).collect();
    // Affected: differs from the same-named reference node, or reads an affected value. Nodes are in
    // topological order, so one sweep settles it; `level` counts refit layers upstream for the waves.
    let mut affected_value: HashMap<&str, bool> = HashMap::new();
    let mut level: HashMap<&str, usize> = HashMap::new();
    let mut out = Plan {
        removed: removed_activations(model, reference),
        ..Default::default()
    };
    for (i, n) in g.node.iter().enumerate() {
        let refs = outer_refs(n);
        let reads = n.input.iter().chain(refs.iter()).filter(|v| !v.is_empty());
        let upstream = reads
            .clone()
            .any(|v| affected_value.get(v.as_str()).copied().unwrap_or(false));
        let changed = by_name
            .get(n.name_or_output())
            .is_none_or(|m| m.op() != n.op() || m.input != n.input || m.attribute != n.attribute);
        let affected = upstream || changed;
        let lvl = reads
            .map(|v| level.get(v.as_str()).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let mut out_lvl = lvl;
        if affected && matches!(n.op(), "Conv" | "Gemm" | "MatMul") {
            match Linear::read(model, &ix, i).map_err(|e| CalibError::Model {
                model: model.display_name(),
                reason: format!("layer '{}': {e}", n.name_or_output()),
            })? {
                Some(linear) => {
                    check_lines_up(model, reference, &rix, &linear)?;
                    let y = &linear.output;
                    let readers = ix.consumers_of(y);
                    let bn_follows = !readers.is_empty()
                        && !ix.graph_outputs.contains(y)
                        && readers.iter().all(|&c| g.node[c].op() == "BatchNormalization");
                    out.targets.push(Target {
                        linear,
                        wave: lvl,
                        bn_follows,
                    });
                    out_lvl = lvl + 1;
                }
                None => out.skipped.push(n.name_or_output().to_string()),
            }
        }
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            affected_value.insert(o, affected);
            level.insert(o, out_lvl);
        }
    }
    Ok(out)
}

fn check_lines_up(model: &Model, reference: &Model, rix: &GraphIndex, l: &Linear) -> Result<(), CalibError> {
    let produced = rix.producer.contains_key(&l.output) || rix.graph_inputs.contains(&l.output);
    if !produced {
        return Err(CalibError::LineUp {
            reference: reference.display_name(),
            model: model.display_name(),
            reason: format!("no tensor '{}' (output of layer '{}' of the model)", l.output, l.name),
        });
    }
    Ok(())
}
