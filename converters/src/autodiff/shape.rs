//! The shape facts autodiff needs, from the one shape inference ([`crate::shapes`]) at the training batch
//! size: every value must be known, so the first value inference could not infer is an error.

use std::collections::HashMap;

use crate::autodiff::error::{GradError, Result};
use crate::autodiff::registry::Registry;
use crate::ir::Model;
use crate::shapes::{ValInfo, infer_with};

/// Infos for every value of the main graph. `inputs` gives the static shape of each runtime graph input.
pub fn infer_all(
    model: &Model,
    reg: &Registry,
    inputs: &HashMap<String, Vec<i64>>,
) -> Result<HashMap<String, ValInfo>> {
    let inference = infer_with(reg, model, inputs, None);
    if let Some(name) = inference.unresolved_inputs.first() {
        return Err(GradError::Config(format!(
            "graph input '{name}' has a symbolic shape and no value was given"
        )));
    }
    if let Some((_, e)) = inference.failures.into_iter().next() {
        return Err(e.into());
    }
    Ok(inference.info)
}
