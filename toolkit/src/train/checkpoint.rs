//! Checkpoints: a JSON header (what model and graph the state belongs to, how far training got) followed by
//! every state tensor as little-endian f32, written atomically. `--resume` refuses a checkpoint whose source
//! model or state layout differs from the run it is asked to continue.

use std::path::Path;

use anyhow::{Context, Result, bail};
use converters::ir::model::write_atomic;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 12] = b"RATIOCKPT01\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotMeta {
    pub name: String,
    pub input: String,
    pub dims: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// sha256 of the inference model the run started from.
    pub model_sha256: String,
    pub slots: Vec<SlotMeta>,
    /// Epochs completed.
    pub epoch: u64,
    pub steps_taken: u64,
    pub best_val_acc: Option<f64>,
    pub seed: u64,
}

pub fn save(path: &Path, header: &Header, state: &[ArrayD<f32>]) -> Result<()> {
    let head = serde_json::to_vec(header)?;
    let total: usize = state.iter().map(|a| a.len() * 4).sum();
    let mut buf = Vec::with_capacity(MAGIC.len() + 8 + head.len() + total);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(head.len() as u64).to_le_bytes());
    buf.extend_from_slice(&head);
    for a in state {
        for v in a.iter() {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    write_atomic(path, &buf)
        .map(|_sha| ())
        .with_context(|| format!("writing checkpoint {}", path.display()))
}

pub fn load(path: &Path) -> Result<(Header, Vec<ArrayD<f32>>)> {
    let b = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    if !b.starts_with(MAGIC) || b.len() < MAGIC.len() + 8 {
        bail!("{}: not a ratio checkpoint", path.display());
    }
    let mut o = MAGIC.len();
    let hl = u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    o += 8;
    let head = b
        .get(o..o + hl)
        .with_context(|| format!("{}: truncated header", path.display()))?;
    let header: Header =
        serde_json::from_slice(head).with_context(|| format!("{}: unreadable header", path.display()))?;
    o += hl;
    let mut state = Vec::with_capacity(header.slots.len());
    for s in &header.slots {
        let shape: Vec<usize> = s.dims.iter().map(|&d| d.max(0) as usize).collect();
        let n: usize = shape.iter().product();
        let bytes = b
            .get(o..o + 4 * n)
            .with_context(|| format!("{}: truncated at tensor '{}'", path.display(), s.name))?;
        o += 4 * n;
        let vals = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        state.push(ArrayD::from_shape_vec(IxDyn(&shape), vals)?);
    }
    if o != b.len() {
        bail!("{}: {} trailing bytes", path.display(), b.len() - o);
    }
    Ok((header, state))
}
