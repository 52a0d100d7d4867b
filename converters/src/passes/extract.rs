//! Cut a graph down to what some values need: those values become the graph outputs, every node they do not
//! depend on is removed, and initializers nothing reads any more are dropped. Calibration runs such cuts so that
//! ONNX Runtime computes only up to the layer being fitted.

use std::collections::HashSet;

use super::PassError;
use crate::ir::Patch;
use crate::ir::index::{GraphIndex, outer_refs};
use crate::proto::GraphProto;

/// Keep only what `outputs` need; they become the graph outputs, in order.
pub fn extract(g: &mut GraphProto, outputs: &[String]) -> Result<(), PassError> {
    let ix = GraphIndex::new(g);
    let mut needed: HashSet<usize> = HashSet::new();
    let mut stack: Vec<String> = outputs.to_vec();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v.clone()) {
            continue;
        }
        if let Some(&(i, _)) = ix.producer.get(&v)
            && needed.insert(i)
        {
            let n = &g.node[i];
            stack.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
            stack.extend(outer_refs(n));
        }
    }
    let mut p = Patch::new();
    for i in (0..g.node.len()).filter(|i| !needed.contains(i)) {
        p.remove(i);
    }
    for t in g.initializer.iter().filter_map(|t| t.name.as_deref()) {
        p.drop_if_unused(t);
    }
    p.set_outputs(outputs);
    p.note(format!("extract {} value(s)", outputs.len()));
    p.apply(g)?;
    Ok(())
}
