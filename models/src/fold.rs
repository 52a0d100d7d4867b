//! Folding inference-mode BatchNormalization into the convolution that feeds it, for deployment: the
//! `converters::passes::fold_bn` pass on a model, recording how many pairs it folded.

use converters::passes::PassError;
use converters::passes::fold_bn::fold_bn as fold_graph;
use converters::proto::{ModelProto, StringStringEntryProto};

pub use converters::passes::fold_bn::FoldedPair;

use crate::error::{ModelsError, Result};

/// `model` with every foldable Conv→BatchNormalization pair of its main graph folded (see
/// `converters::passes::fold_bn`).
pub fn fold_bn(model: &ModelProto) -> Result<ModelProto> {
    Ok(fold_bn_report(model)?.0)
}

/// [`fold_bn`], also listing the pairs it folded. Records `ratio.fold_bn = <count>` in `metadata_props`.
pub fn fold_bn_report(model: &ModelProto) -> Result<(ModelProto, Vec<FoldedPair>)> {
    let mut out = model.clone();
    let Some(g) = out.graph.as_mut() else {
        return Err(ModelsError::Fold {
            node: String::new(),
            reason: "the model has no graph".into(),
        });
    };
    let folded = fold_graph(g).map_err(|e| match e {
        PassError::Node { node, reason, .. } => ModelsError::Fold { node, reason },
        PassError::Ir(e) => ModelsError::Ir(e),
    })?;
    out.metadata_props.retain(|e| e.key.as_deref() != Some("ratio.fold_bn"));
    out.metadata_props.push(StringStringEntryProto {
        key: Some("ratio.fold_bn".into()),
        value: Some(folded.len().to_string()),
    });
    Ok((out, folded))
}
