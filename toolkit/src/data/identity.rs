//! What a number was measured on: the data's path, format, split, count and a content hash.

use std::io::Read;
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
    let mut f = std::fs::File::open(path).map_err(DataError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(DataError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
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

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
