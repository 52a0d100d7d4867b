//! What a number was measured on: the data's path, format, split, count and a content hash.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DataError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataIdentity {
    pub path: String,
    pub format: String,
    pub split: Option<String>,
    /// Samples in the set before `--limit`.
    pub count: usize,
    /// sha256, hex: of the single file, of the concatenated per-file hashes (several files), or of a manifest.
    pub sha256: String,
    /// What `sha256` covers: `files` (every byte read) or `manifest` (relative paths and sizes, for image
    /// folders too large to hash on every run).
    pub hashed: String,
}

/// sha256 of one file, streamed so large files do not sit in memory twice.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    converters::ir::model::sha256_stream(path).map_err(DataError::io(path))
}

/// One hash for several files: sha256 over "name sha256\n" lines in the given order.
pub fn sha256_files(paths: &[&Path]) -> Result<String, DataError> {
    if let [one] = paths {
        return sha256_file(one);
    }
    let mut h = Sha256::new();
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        h.update(format!("{name} {}\n", sha256_file(p)?));
    }
    Ok(hex::encode(h.finalize()))
}

pub use converters::ir::model::sha256_hex as sha256_bytes;
