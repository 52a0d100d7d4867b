//! Make intermediate values extra graph outputs, so one run returns them next to the logits (richness statistics
//! at ReLU outputs, negative mass at ReLU inputs, evaluation of features).

use std::collections::HashSet;

use crate::error::{IrError, Result};
use crate::ir::model::Model;
use crate::proto::ValueInfoProto;

/// Append each of `names` to the graph outputs, in order, skipping ones that already are outputs. The type comes
/// from the graph's `value_info` when it has one; otherwise the output is left untyped and ONNX Runtime infers it.
/// Every name must be produced by a top-level node or be a graph input or initializer (values local to a
/// subgraph cannot be outputs); the error names each unknown value. The model is unchanged on error.
pub fn expose_outputs(model: &mut Model, names: &[String]) -> Result<()> {
    let g = model.graph();
    let mut known: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    known.extend(g.input.iter().filter_map(|v| v.name.as_deref()));
    known.extend(g.initializer.iter().filter_map(|t| t.name.as_deref()));
    known.remove("");
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !known.contains(n))
        .collect();
    if !unknown.is_empty() {
        return Err(IrError::Invalid(format!(
            "{}: cannot expose {} as graph output{}: no such value in the top-level graph",
            model.display_name(),
            unknown.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "),
            if unknown.len() > 1 { "s" } else { "" }
        )));
    }
    let mut outputs: HashSet<String> = g.output.iter().filter_map(|v| v.name.clone()).collect();
    let mut added: Vec<ValueInfoProto> = Vec::new();
    for name in names {
        if !outputs.insert(name.clone()) {
            continue;
        }
        let typed = g
            .value_info
            .iter()
            .chain(g.input.iter())
            .find(|v| v.name.as_deref() == Some(name.as_str()))
            .cloned();
        added.push(typed.unwrap_or_else(|| ValueInfoProto {
            name: Some(name.clone()),
            ..Default::default()
        }));
    }
    model.graph_mut().output.extend(added);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::build::{self, GraphBuilder};
    use crate::proto::tensor_proto::DataType;

    fn relu_model() -> Model {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, &[Some(2)]);
        let r = b.op("Relu", "r", &[&x], vec![]);
        let y = b.op("Neg", "y", &[&r], vec![]);
        b.output(&y, DataType::Float, &[Some(2)]);
        Model::new(build::model(b.finish(), "test"))
    }

    #[test]
    fn adds_intermediate_once_and_keeps_existing_outputs_first() {
        let mut m = relu_model();
        let r = m.graph().node[0].output[0].clone();
        let y = m.graph().output[0].name.clone().unwrap();
        expose_outputs(&mut m, &[r.clone(), r.clone(), y.clone()]).unwrap();
        let outs: Vec<_> = m.graph().output.iter().map(|v| v.name.clone().unwrap()).collect();
        assert_eq!(outs, vec![y, r]);
        assert!(crate::validate::validate(m.graph()).is_empty());
    }

    #[test]
    fn unknown_names_are_all_listed_and_nothing_changes() {
        let mut m = relu_model();
        let r = m.graph().node[0].output[0].clone();
        let e = expose_outputs(&mut m, &[r, "nope".into(), "nada".into()]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("'nope', 'nada'"), "{msg}");
        assert_eq!(m.graph().output.len(), 1);
    }

    #[test]
    fn typed_from_value_info_when_present() {
        let mut m = relu_model();
        let r = m.graph().node[0].output[0].clone();
        m.graph_mut()
            .value_info
            .push(build::value_info(&r, DataType::Float, &[Some(2)]));
        expose_outputs(&mut m, std::slice::from_ref(&r)).unwrap();
        let added = m.graph().output.last().unwrap();
        assert_eq!(build::value_info_dims(added), Some(vec![Some(2)]));
    }
}
