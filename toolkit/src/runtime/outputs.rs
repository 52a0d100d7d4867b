//! Owned results of a run, looked up by output name.

use ndarray::ArrayD;

use super::error::{Result, RuntimeError};
use super::spec::ElemType;

/// Outputs of one run as `f32` arrays (f16, integer and bool outputs converted), in the model's output order.
/// Integer outputs are also kept exactly ([`Outputs::get_i64`]).
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    pub(crate) model: String,
    values: Vec<(String, ElemType, ArrayD<f32>)>,
    ints: Vec<(String, ArrayD<i64>)>,
    unreadable: Vec<(String, ElemType)>,
}

impl Outputs {
    pub(crate) fn insert(&mut self, name: &str, elem: ElemType, a: ArrayD<f32>) {
        self.values.push((name.to_string(), elem, a));
    }

    pub(crate) fn insert_i64(&mut self, name: &str, a: ArrayD<i64>) {
        self.ints.push((name.to_string(), a));
    }

    pub(crate) fn insert_unreadable(&mut self, name: &str, elem: ElemType) {
        self.unreadable.push((name.to_string(), elem));
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(n, _, _)| n.as_str())
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The output `name` as f32.
    pub fn get(&self, name: &str) -> Result<&ArrayD<f32>> {
        match self.values.iter().find(|(n, _, _)| n == name) {
            Some((_, _, a)) => Ok(a),
            None => Err(self.missing(name, "f32")),
        }
    }

    /// Move the output `name` out as f32.
    pub fn take(&mut self, name: &str) -> Result<ArrayD<f32>> {
        match self.values.iter().position(|(n, _, _)| n == name) {
            Some(i) => Ok(self.values.remove(i).2),
            None => Err(self.missing(name, "f32")),
        }
    }

    /// Element type the model produced for `name` before conversion.
    pub fn elem(&self, name: &str) -> Option<&ElemType> {
        self.values.iter().find(|(n, _, _)| n == name).map(|(_, e, _)| e)
    }

    /// An i64 output, exactly.
    pub fn get_i64(&self, name: &str) -> Result<&ArrayD<i64>> {
        match self.ints.iter().find(|(n, _)| n == name) {
            Some((_, a)) => Ok(a),
            None => Err(self.missing(name, "i64")),
        }
    }

    fn missing(&self, name: &str, wanted: &str) -> RuntimeError {
        if let Some((_, e)) = self.unreadable.iter().find(|(n, _)| n == name) {
            return RuntimeError::OutputType {
                model: self.model.clone(),
                name: name.into(),
                elem: e.to_string(),
                wanted: wanted.into(),
            };
        }
        if let Some((_, e, _)) = self.values.iter().find(|(n, _, _)| n == name) {
            return RuntimeError::OutputType {
                model: self.model.clone(),
                name: name.into(),
                elem: e.to_string(),
                wanted: wanted.into(),
            };
        }
        RuntimeError::UnknownOutput {
            model: self.model.clone(),
            name: name.into(),
            available: self.names().collect::<Vec<_>>().join(", "),
        }
    }
}
