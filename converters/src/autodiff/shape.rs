//! Static shape inference over the forward graph for a fixed batch size, folding integer shape arithmetic.

use std::collections::HashMap;

use crate::autodiff::error::{GradError, Result};
use crate::autodiff::info::{FLOAT, ValInfo};
use crate::autodiff::registry::Registry;
use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::build::{value_info_dims, value_info_elem};
use crate::ir::tensor;

/// Infos for every value of the main graph. `inputs` gives the static shape of each runtime graph input.
pub fn infer_all(
    model: &Model,
    reg: &Registry,
    inputs: &HashMap<String, Vec<i64>>,
) -> Result<HashMap<String, ValInfo>> {
    let g = model.graph();
    let mut info = HashMap::new();
    for t in &g.initializer {
        let Some(name) = t.name.clone() else { continue };
        let elem = t.data_type.unwrap_or(FLOAT);
        let ints = if elem != FLOAT && tensor::numel(&t.dims) <= 4096 {
            let raw = model.tensor_bytes(t)?;
            Some(tensor::to_i64(t, raw.as_ref())?)
        } else {
            None
        };
        info.insert(
            name,
            ValInfo {
                shape: t.dims.clone(),
                elem,
                ints,
            },
        );
    }
    for vi in &g.input {
        let Some(name) = vi.name.clone() else { continue };
        if let Some(shape) = inputs.get(&name) {
            info.insert(
                name,
                ValInfo {
                    shape: shape.clone(),
                    elem: value_info_elem(vi).unwrap_or(FLOAT),
                    ints: None,
                },
            );
        } else if let std::collections::hash_map::Entry::Vacant(slot) = info.entry(name) {
            let dims = value_info_dims(vi).unwrap_or_default();
            let shape: Option<Vec<i64>> = dims.into_iter().collect();
            let shape = shape.ok_or_else(|| {
                GradError::Config(format!(
                    "graph input '{}' has a symbolic shape and no value was given",
                    slot.key()
                ))
            })?;
            slot.insert(ValInfo::float(shape));
        }
    }
    for n in &g.node {
        let rule = reg.get(n.op()).ok_or_else(|| GradError::UnsupportedOps {
            ops: vec![n.op().to_string()],
        })?;
        let ins: Vec<Option<&ValInfo>> = n
            .input
            .iter()
            .map(|i| if i.is_empty() { None } else { info.get(i) })
            .collect();
        let outs = (rule.infer)(n, &ins)?;
        for (o, v) in n.output.iter().zip(outs) {
            if !o.is_empty() {
                info.insert(o.clone(), v);
            }
        }
    }
    Ok(info)
}
