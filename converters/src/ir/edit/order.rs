//! A stable topological order: nodes keep their relative order except where a node must move after something it
//! reads (an added node read by an earlier one is hoisted just before its first reader).

use std::collections::HashMap;

use crate::ir::attr::NodeExt;
use crate::ir::index::outer_refs;
use crate::proto::NodeProto;

/// `nodes` sorted so every node comes after the producers of what it reads (subgraph references included), or
/// the name of a node on a cycle. Values nothing here produces (inputs, initializers) are taken as given.
pub(super) fn stable_topological(nodes: Vec<NodeProto>) -> Result<Vec<NodeProto>, String> {
    let deps: Vec<Vec<usize>> = {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.entry(o.as_str()).or_insert(i);
            }
        }
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut d: Vec<usize> = Vec::new();
                let refs = outer_refs(n);
                for v in n.input.iter().chain(refs.iter()).filter(|v| !v.is_empty()) {
                    if let Some(&p) = producer.get(v.as_str())
                        && p != i
                        && !d.contains(&p)
                    {
                        d.push(p);
                    }
                }
                d
            })
            .collect()
    };
    // Iterative depth-first search (graphs can be thousands of nodes deep): 0 new, 1 on the stack, 2 emitted.
    let mut state = vec![0u8; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    for root in 0..nodes.len() {
        if state[root] != 0 {
            continue;
        }
        state[root] = 1;
        let mut stack = vec![(root, 0usize)];
        while let Some(top) = stack.last_mut() {
            let (v, k) = *top;
            if let Some(&d) = deps[v].get(k) {
                top.1 += 1;
                match state[d] {
                    0 => {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => return Err(nodes[d].name_or_output().to_string()),
                    _ => {}
                }
            } else {
                state[v] = 2;
                order.push(v);
                stack.pop();
            }
        }
    }
    let mut slots: Vec<Option<NodeProto>> = nodes.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}
