//! Untie what only the exporter tied. The legacy torch exporter with `training=PRESERVE` deduplicates tensors with
//! identical contents: one initializer, and an `Identity` node for every other name (fresh BN running
//! statistics, zero-initialised biases, unit BN scales). In PyTorch those were separate tensors, and fine-tuning
//! must treat them so:
//! - **running statistics always**: every BatchNorm updates its own. A statistic read through an Identity gets
//!   an initializer under the name that BN reads; one read by several BNs under the same name gets a copy per
//!   extra reader.
//! - **parameters tied only by deduplication**: when one tensor reaches parameter slots under two or more names
//!   (itself and Identity outputs), each name gets its own copy. A tensor that several nodes read under one name
//!   is shared on purpose (PyTorch reused the parameter) and stays tied.
//!
//! The result is the model the train step reads and writes back into; each untying is reported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::autodiff::error::Result;
use crate::autodiff::params::{Origin, constant_behind, constant_values};
use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ir::tensor;
use crate::ops::Registry;
use crate::proto::TensorProto;

/// One tensor that reached several consumers and now has a copy per consumer name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untied {
    /// The deduplicated tensor.
    pub source: String,
    /// The names that now hold their own copy.
    pub copies: Vec<String>,
    /// BN running statistics (else parameters).
    pub running: bool,
}

impl fmt::Display for Untied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.running { "running statistic" } else { "parameter" };
        let shown: Vec<String> = self.copies.iter().take(3).map(|c| format!("'{c}'")).collect();
        let more = match self.copies.len().saturating_sub(3) {
            0 => String::new(),
            k => format!(" and {k} more"),
        };
        write!(
            f,
            "{what} '{}' was also {}{more} (the exporter deduplicated equal tensors); each now trains its own copy",
            self.source,
            shown.join(", ")
        )
    }
}

/// A float constant behind a consumer's input, seen through Identity nodes.
struct Resolved {
    /// The name the consumer reads.
    read: String,
    /// The initializer or Constant output at the end of the Identity chain.
    source: String,
    origin: Origin,
}

fn resolve(g: &crate::proto::GraphProto, ix: &GraphIndex, value: &str) -> Option<Resolved> {
    let (source, origin) = constant_behind(g, ix, value)?;
    Some(Resolved {
        read: value.to_string(),
        source,
        origin,
    })
}

/// The model with exporter-tied tensors untied, and what was untied. `bn_train`: running statistics are state.
pub fn untie(model: &Model, reg: &Registry, bn_train: bool) -> Result<(Model, Vec<Untied>)> {
    let g = model.graph();
    let ix = GraphIndex::new(g);
    // Parameter names per source, and running-statistic reads as (node, slot).
    let mut param_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut origins: HashMap<String, Origin> = HashMap::new();
    let mut stat_reads: Vec<(usize, usize, Resolved)> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let Some(spec) = reg.of(n) else { continue };
        for &slot in spec.param_slots {
            if let Some(r) = n.input.get(slot).and_then(|v| resolve(g, &ix, v)) {
                origins.insert(r.source.clone(), r.origin.clone());
                let names = param_names.entry(r.source).or_default();
                if !names.contains(&r.read) {
                    names.push(r.read);
                }
            }
        }
        if bn_train {
            for &(slot, _) in spec.state_slots {
                if let Some(r) = n.input.get(slot).and_then(|v| resolve(g, &ix, v)) {
                    origins.insert(r.source.clone(), r.origin.clone());
                    stat_reads.push((i, slot, r));
                }
            }
        }
    }

    let mut materialize: BTreeMap<String, String> = BTreeMap::new(); // read name → source
    let mut report = Vec::new();
    for (source, names) in &param_names {
        if names.len() > 1 {
            let copies: Vec<String> = names.iter().filter(|n| *n != source).cloned().collect();
            for c in &copies {
                materialize.insert(c.clone(), source.clone());
            }
            report.push(Untied {
                source: source.clone(),
                copies,
                running: false,
            });
        }
    }
    // A statistic may read the very name a parameter trains under (the exporter merges a fresh running mean
    // with a zero bias): it then gets a copy of its own too.
    let mut taken: HashSet<String> = param_names.values().flatten().cloned().collect();
    let mut rewire: Vec<(usize, usize, String, String)> = Vec::new(); // node, slot, new name, source
    let mut stat_copies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, slot, r) in stat_reads {
        if !taken.insert(r.read.clone()) {
            let fresh = fresh_name(g, &format!("{}.{}", r.read, g.node[node].name_or_output()), &taken);
            taken.insert(fresh.clone());
            stat_copies.entry(r.source.clone()).or_default().push(fresh.clone());
            rewire.push((node, slot, fresh, r.source));
        } else if r.read != r.source {
            stat_copies.entry(r.source.clone()).or_default().push(r.read.clone());
            materialize.insert(r.read, r.source);
        }
    }
    for (source, copies) in stat_copies {
        report.push(Untied {
            source,
            copies,
            running: true,
        });
    }
    if materialize.is_empty() && rewire.is_empty() {
        return Ok((model.clone(), report));
    }

    let mut cache: HashMap<String, (Vec<i64>, Vec<f32>)> = HashMap::new();
    let mut tensor_of = |source: &str, name: &str| -> Result<TensorProto> {
        if !cache.contains_key(source) {
            cache.insert(source.to_string(), constant_values(model, source, &origins[source])?);
        }
        let (dims, v) = &cache[source];
        Ok(tensor::from_f32(name, dims, v))
    };
    let mut out = model.clone();
    let mut added = Vec::new();
    let mut drop: HashSet<usize> = HashSet::new();
    for (read, source) in &materialize {
        added.push(tensor_of(source, read)?);
        if let Some(&(p, _)) = ix.producer.get(read) {
            drop.insert(p);
        }
    }
    let gm = out.graph_mut();
    for (node, slot, fresh, source) in &rewire {
        added.push(tensor_of(source, fresh)?);
        gm.node[*node].input[*slot] = fresh.clone();
    }
    gm.initializer.extend(added);
    let mut idx = 0;
    gm.node.retain(|_| {
        idx += 1;
        !drop.contains(&(idx - 1))
    });
    Ok((out, report))
}

fn fresh_name(g: &crate::proto::GraphProto, base: &str, taken: &HashSet<String>) -> String {
    let used = |n: &str| {
        taken.contains(n)
            || g.initializer.iter().any(|t| t.name.as_deref() == Some(n))
            || g.node.iter().any(|x| x.output.iter().any(|o| o == n))
            || g.input.iter().any(|v| v.name.as_deref() == Some(n))
    };
    let mut name = base.to_string();
    let mut k = 1;
    while used(&name) {
        name = format!("{base}.{k}");
        k += 1;
    }
    name
}
