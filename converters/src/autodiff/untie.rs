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
use crate::proto::{GraphProto, TensorProto};

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

fn resolve(g: &GraphProto, ix: &GraphIndex, value: &str) -> Option<Resolved> {
    let (source, origin) = constant_behind(g, ix, value)?;
    Some(Resolved {
        read: value.to_string(),
        source,
        origin,
    })
}

/// Who reads which float constant: parameter names per source, and every running-statistic read.
#[derive(Default)]
struct Reads {
    params: BTreeMap<String, Vec<String>>,
    stats: Vec<(usize, usize, Resolved)>,
    origins: HashMap<String, Origin>,
}

fn reads(g: &GraphProto, ix: &GraphIndex, reg: &Registry, bn_train: bool) -> Reads {
    let mut r = Reads::default();
    for (i, n) in g.node.iter().enumerate() {
        let Some(spec) = reg.of(n) else { continue };
        for &slot in spec.param_slots {
            if let Some(v) = n.input.get(slot).and_then(|v| resolve(g, ix, v)) {
                r.origins.insert(v.source.clone(), v.origin.clone());
                let names = r.params.entry(v.source).or_default();
                if !names.contains(&v.read) {
                    names.push(v.read);
                }
            }
        }
        if bn_train {
            for &(slot, _) in spec.state_slots {
                if let Some(v) = n.input.get(slot).and_then(|v| resolve(g, ix, v)) {
                    r.origins.insert(v.source.clone(), v.origin.clone());
                    r.stats.push((i, slot, v));
                }
            }
        }
    }
    r
}

/// The edits that untie: names to turn into initializers of their own (read name → source), and
/// (node, slot, fresh name, source) inputs to point at a fresh copy.
#[derive(Default)]
struct Plan {
    materialize: BTreeMap<String, String>,
    rewire: Vec<(usize, usize, String, String)>,
    report: Vec<Untied>,
}

fn plan(g: &GraphProto, reads: Reads) -> Plan {
    let mut p = Plan::default();
    for (source, names) in &reads.params {
        if names.len() > 1 {
            let copies: Vec<String> = names.iter().filter(|n| *n != source).cloned().collect();
            for c in &copies {
                p.materialize.insert(c.clone(), source.clone());
            }
            p.report.push(Untied {
                source: source.clone(),
                copies,
                running: false,
            });
        }
    }
    // A statistic may read the very name a parameter trains under (the exporter merges a fresh running mean
    // with a zero bias): it then gets a copy of its own too.
    let mut taken: HashSet<String> = reads.params.values().flatten().cloned().collect();
    let mut stat_copies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, slot, r) in reads.stats {
        if !taken.insert(r.read.clone()) {
            let fresh = fresh_name(g, &format!("{}.{}", r.read, g.node[node].name_or_output()), &taken);
            taken.insert(fresh.clone());
            stat_copies.entry(r.source.clone()).or_default().push(fresh.clone());
            p.rewire.push((node, slot, fresh, r.source));
        } else if r.read != r.source {
            stat_copies.entry(r.source.clone()).or_default().push(r.read.clone());
            p.materialize.insert(r.read, r.source);
        }
    }
    for (source, copies) in stat_copies {
        p.report.push(Untied {
            source,
            copies,
            running: true,
        });
    }
    p
}

/// The model with exporter-tied tensors untied, and what was untied. `bn_train`: running statistics are state.
pub fn untie(model: &Model, reg: &Registry, bn_train: bool) -> Result<(Model, Vec<Untied>)> {
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let reads = reads(g, &ix, reg, bn_train);
    let origins = reads.origins.clone();
    let plan = plan(g, reads);
    if plan.materialize.is_empty() && plan.rewire.is_empty() {
        return Ok((model.clone(), plan.report));
    }
    let mut cache: HashMap<String, (Vec<i64>, Vec<f32>)> = HashMap::new();
    let mut tensor_of = |source: &str, name: &str| -> Result<TensorProto> {
        if !cache.contains_key(source) {
            cache.insert(source.to_string(), constant_values(model, source, &origins[source])?);
        }
        let (dims, v) = &cache[source];
        Ok(tensor::from_f32(name, dims, v))
    };
    let mut added = Vec::new();
    let mut drop: HashSet<usize> = HashSet::new();
    for (read, source) in &plan.materialize {
        added.push(tensor_of(source, read)?);
        if let Some(&(p, _)) = ix.producer.get(read) {
            drop.insert(p);
        }
    }
    let mut out = model.clone();
    let gm = out.graph_mut();
    for (node, slot, fresh, source) in &plan.rewire {
        added.push(tensor_of(source, fresh)?);
        gm.node[*node].input[*slot] = fresh.clone();
    }
    gm.initializer.extend(added);
    let mut idx = 0;
    gm.node.retain(|_| {
        idx += 1;
        !drop.contains(&(idx - 1))
    });
    Ok((out, plan.report))
}

fn fresh_name(g: &GraphProto, base: &str, taken: &HashSet<String>) -> String {
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
