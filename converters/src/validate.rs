//! Structural validity: topological order, every input produced, unique value and node names, outputs produced.
//! Runs after every conversion and in tests; subgraphs are checked with their enclosing scope visible.

use std::collections::HashSet;

use crate::ir::attr::NodeExt;
use crate::proto::GraphProto;

/// All problems found, each as one readable line; empty when the graph is valid.
pub fn validate(g: &GraphProto) -> Vec<String> {
    let mut problems = Vec::new();
    check(g, &HashSet::new(), &mut problems);
    problems
}

fn check(g: &GraphProto, outer: &HashSet<String>, problems: &mut Vec<String>) {
    let mut defined: HashSet<String> = outer.clone();
    let mut produced_here = HashSet::new();
    for v in g.input.iter().filter_map(|v| v.name.clone()) {
        defined.insert(v.clone());
        produced_here.insert(v);
    }
    for t in g.initializer.iter().filter_map(|t| t.name.clone()) {
        defined.insert(t.clone());
        produced_here.insert(t);
    }
    let mut node_names = HashSet::new();
    for n in &g.node {
        if let Some(name) = n.name.as_deref().filter(|s| !s.is_empty())
            && !node_names.insert(name.to_string())
        {
            problems.push(format!("node name '{name}' is used twice"));
        }
        for i in n.input.iter().filter(|s| !s.is_empty()) {
            if !defined.contains(i) {
                problems.push(format!(
                    "node '{}' ({}) reads '{i}', which is not produced before it",
                    n.name_or_output(),
                    n.op()
                ));
            }
        }
        for sg in n.subgraphs() {
            check(sg, &defined, problems);
        }
        for o in n.output.iter().filter(|s| !s.is_empty()) {
            if !produced_here.insert(o.clone()) {
                problems.push(format!("value '{o}' is produced twice (node '{}')", n.name_or_output()));
            }
            defined.insert(o.clone());
        }
    }
    for o in g.output.iter().filter_map(|v| v.name.as_deref()) {
        if !defined.contains(o) {
            problems.push(format!("graph output '{o}' is never produced"));
        }
    }
}
