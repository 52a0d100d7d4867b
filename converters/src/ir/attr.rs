//! Typed attribute getters on `NodeProto`; errors name the node, its op and the attribute.

use crate::error::{IrError, Result};
use crate::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// Short accessors for the optional proto2 fields everyone needs.
pub trait NodeExt {
    fn op(&self) -> &str;
    fn name_or_output(&self) -> &str;
    fn domain_str(&self) -> &str;
    fn attr(&self, name: &str) -> Option<&AttributeProto>;
    fn get_i(&self, name: &str) -> Result<Option<i64>>;
    fn get_f(&self, name: &str) -> Result<Option<f32>>;
    fn get_ints(&self, name: &str) -> Result<Option<Vec<i64>>>;
    fn get_floats(&self, name: &str) -> Result<Option<Vec<f32>>>;
    fn get_s(&self, name: &str) -> Result<Option<String>>;
    fn get_t(&self, name: &str) -> Result<Option<&TensorProto>>;
    fn subgraphs(&self) -> Vec<&GraphProto>;
    fn attr_error(&self, attr: &str, reason: impl Into<String>) -> IrError;
}

impl NodeExt for NodeProto {
    fn op(&self) -> &str {
        self.op_type.as_deref().unwrap_or("")
    }

    /// The node name, or its first output when the exporter left names empty.
    fn name_or_output(&self) -> &str {
        match self.name.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => self.output.first().map(String::as_str).unwrap_or(""),
        }
    }

    fn domain_str(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("ai.onnx") => "",
            Some(d) => d,
        }
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name.as_deref() == Some(name))
    }

    fn get_i(&self, name: &str) -> Result<Option<i64>> {
        self.attr(name)
            .map(|a| a.i.ok_or_else(|| self.attr_error(name, "expected an int")))
            .transpose()
    }

    fn get_f(&self, name: &str) -> Result<Option<f32>> {
        self.attr(name)
            .map(|a| a.f.ok_or_else(|| self.attr_error(name, "expected a float")))
            .transpose()
    }

    fn get_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.attr(name).map(|a| a.ints.clone()))
    }

    fn get_floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.attr(name).map(|a| a.floats.clone()))
    }

    fn get_s(&self, name: &str) -> Result<Option<String>> {
        self.attr(name)
            .map(|a| {
                let s = a.s.as_ref().ok_or_else(|| self.attr_error(name, "expected a string"))?;
                String::from_utf8(s.to_vec()).map_err(|_| self.attr_error(name, "string is not UTF-8"))
            })
            .transpose()
    }

    fn get_t(&self, name: &str) -> Result<Option<&TensorProto>> {
        self.attr(name)
            .map(|a| a.t.as_ref().ok_or_else(|| self.attr_error(name, "expected a tensor")))
            .transpose()
    }

    fn subgraphs(&self) -> Vec<&GraphProto> {
        self.attribute
            .iter()
            .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
            .collect()
    }

    fn attr_error(&self, attr: &str, reason: impl Into<String>) -> IrError {
        IrError::Attr {
            node: self.name_or_output().into(),
            op_type: self.op().into(),
            attr: attr.into(),
            reason: reason.into(),
        }
    }
}
