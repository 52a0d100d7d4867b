//! External tensor data: `.data` side files referenced by `TensorProto.external_data` (location/offset/length).
//! Files are read once, lazily, and tensors slice them without copying.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use crate::error::{IrError, Result};
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{GraphProto, ModelProto, StringStringEntryProto, TensorProto};

#[derive(Debug, Clone, Default)]
pub(crate) struct ExternalStore {
    base: Option<PathBuf>,
    files: Arc<Mutex<HashMap<PathBuf, Bytes>>>,
}

pub fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(DataLocation::External as i32)
}

fn entry<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data
        .iter()
        .find(|e| e.key.as_deref() == Some(key))
        .and_then(|e| e.value.as_deref())
}

pub(crate) fn has_external(m: &ModelProto) -> bool {
    m.graph.as_ref().is_some_and(|g| all_tensors(g).any(is_external))
}

fn all_tensors(g: &GraphProto) -> impl Iterator<Item = &TensorProto> {
    g.initializer.iter().chain(
        g.node
            .iter()
            .flat_map(|n| n.attribute.iter().filter_map(|a| a.t.as_ref())),
    )
}

fn all_tensors_mut(g: &mut GraphProto) -> impl Iterator<Item = &mut TensorProto> {
    g.initializer.iter_mut().chain(
        g.node
            .iter_mut()
            .flat_map(|n| n.attribute.iter_mut().filter_map(|a| a.t.as_mut())),
    )
}

/// Fail early, naming the file, when a side file is missing: better at load than halfway through a conversion.
pub(crate) fn check_locations(m: &ModelProto, model_path: &Path) -> Result<()> {
    let Some(g) = m.graph.as_ref() else { return Ok(()) };
    let base = model_path.parent().unwrap_or(Path::new("."));
    for t in all_tensors(g).filter(|t| is_external(t)) {
        let name = t.name.clone().unwrap_or_default();
        let loc = entry(t, "location").ok_or_else(|| IrError::ExternalData {
            path: model_path.to_path_buf(),
            tensor: name.clone(),
            reason: "no 'location' entry".into(),
        })?;
        let p = base.join(loc);
        if Path::new(loc).is_absolute() || loc.contains("..") {
            return Err(IrError::ExternalData {
                path: model_path.to_path_buf(),
                tensor: name,
                reason: format!("location '{loc}' escapes the model's folder"),
            });
        }
        if !p.is_file() {
            return Err(IrError::ExternalData {
                path: model_path.to_path_buf(),
                tensor: name,
                reason: format!("side file {} does not exist", p.display()),
            });
        }
    }
    Ok(())
}

impl ExternalStore {
    pub(crate) fn new(base: Option<PathBuf>) -> Self {
        ExternalStore {
            base,
            files: Default::default(),
        }
    }

    fn file(&self, loc: &str, model: &str, tensor: &str) -> Result<Bytes> {
        let base = self.base.clone().unwrap_or_else(|| PathBuf::from("."));
        let path = base.join(loc);
        let mut files = self.files.lock().expect("external store lock");
        if let Some(b) = files.get(&path) {
            return Ok(b.clone());
        }
        let data = std::fs::read(&path).map_err(|e| IrError::ExternalData {
            path: PathBuf::from(model),
            tensor: tensor.into(),
            reason: format!("reading {}: {e}", path.display()),
        })?;
        let b = Bytes::from(data);
        files.insert(path, b.clone());
        Ok(b)
    }

    /// The bytes of `t`: raw_data when inline, or its slice of the side file. `None` for typed-field tensors.
    pub(crate) fn tensor_bytes(&self, t: &TensorProto, model: &str) -> Result<Option<Bytes>> {
        if !is_external(t) {
            return Ok(t.raw_data.clone());
        }
        let name = t.name.clone().unwrap_or_default();
        let err = |reason: String| IrError::ExternalData {
            path: PathBuf::from(model),
            tensor: name.clone(),
            reason,
        };
        let loc = entry(t, "location").ok_or_else(|| err("no 'location' entry".into()))?;
        let file = self.file(loc, model, &name)?;
        let offset: usize = entry(t, "offset")
            .map(str::parse)
            .transpose()
            .map_err(|e| err(format!("bad offset: {e}")))?
            .unwrap_or(0);
        let length: usize = match entry(t, "length") {
            Some(l) => l.parse().map_err(|e| err(format!("bad length: {e}")))?,
            None => file.len().saturating_sub(offset),
        };
        if offset.checked_add(length).is_none_or(|end| end > file.len()) {
            return Err(err(format!(
                "offset {offset} + length {length} is past the end of '{loc}' ({} bytes)",
                file.len()
            )));
        }
        Ok(Some(file.slice(offset..offset + length)))
    }

    pub(crate) fn inline_all(&self, proto: &mut ModelProto, model: &str) -> Result<()> {
        let Some(g) = proto.graph.as_mut() else { return Ok(()) };
        for t in all_tensors_mut(g).filter(|t| is_external(t)) {
            let bytes = self.tensor_bytes(t, model)?;
            t.raw_data = bytes;
            t.external_data.clear();
            t.data_location = Some(DataLocation::Default as i32);
        }
        Ok(())
    }

    /// A copy of `proto` whose large initializers point into one new side file `data_name`, and that file's bytes.
    pub(crate) fn externalize(
        &self,
        proto: &ModelProto,
        data_name: &str,
        model: &str,
    ) -> Result<(ModelProto, Vec<u8>)> {
        // Small tensors stay inline, as onnx's own saver does (size_threshold = 1024).
        const THRESHOLD: usize = 1024;
        let mut out = proto.clone();
        let mut blob = BytesMut::new();
        if let Some(g) = out.graph.as_mut() {
            for t in all_tensors_mut(g) {
                let Some(bytes) = self.tensor_bytes(t, model)? else {
                    continue;
                };
                if bytes.len() < THRESHOLD && !is_external(t) {
                    continue;
                }
                // Align each tensor to 4 KiB so the side file can be memory-mapped by runtimes.
                let pad = (4096 - blob.len() % 4096) % 4096;
                blob.extend(std::iter::repeat_n(0u8, pad));
                let offset = blob.len();
                blob.extend_from_slice(&bytes);
                t.raw_data = None;
                t.data_location = Some(DataLocation::External as i32);
                t.external_data = vec![
                    kv("location", data_name),
                    kv("offset", &offset.to_string()),
                    kv("length", &bytes.len().to_string()),
                ];
            }
        }
        Ok((out, blob.to_vec()))
    }
}

fn kv(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}
