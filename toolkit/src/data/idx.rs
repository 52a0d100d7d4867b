//! IDX files (MNIST, Fashion-MNIST): `{train,t10k}-{images,labels}` pairs, raw or gzip.
//!
//! Format: two zero bytes, a type byte (0x08 = u8), the number of dimensions, then big-endian u32 sizes and the
//! data in C order. Images are `[N, H, W]`, labels `[N]`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::identity::sha256_bytes;
use super::{DataError, DataIdentity, Dataset, Image, Sample, Split, numbered_classes};

/// A parsed IDX tensor of u8.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Read a file whole, inflating it when it starts with the gzip magic (whatever its name says).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(DataError::io(path))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("gzip stream is broken: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse IDX bytes (already decompressed). Only the u8 type occurs in MNIST-like sets; others are refused.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    let bad = |r: String| DataError::format(path, format!("not an IDX file: {r}"));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("the first two bytes must be zero".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not supported (only 0x08, u8)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(bad(format!("header of {ndim} dimensions is truncated")));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    let body = &bytes[header..];
    if body.len() != n {
        return Err(bad(format!(
            "dimensions {dims:?} need {n} bytes of data, the file holds {}",
            body.len()
        )));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// Images `[N, H, W]` and labels `[N]`, held decoded in memory (70k MNIST images are 55 MB).
pub struct IdxDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    height: usize,
    width: usize,
    classes: Vec<String>,
    identity: DataIdentity,
}

impl IdxDataset {
    /// Open a pair of files.
    pub fn open_pair(images: &Path, labels: &Path, split: Option<Split>) -> Result<Self, DataError> {
        let img_bytes = read_maybe_gz(images)?;
        let lab_bytes = read_maybe_gz(labels)?;
        let img = parse_idx(images, &img_bytes)?;
        let lab = parse_idx(labels, &lab_bytes)?;
        let [n, height, width] = img.dims[..] else {
            return Err(DataError::format(
                images,
                format!("image file must be [N, H, W], found dimensions {:?}", img.dims),
            ));
        };
        if lab.dims != [n] {
            return Err(DataError::format(
                labels,
                format!(
                    "label file must be [{n}] to match {}, found {:?}",
                    images.display(),
                    lab.dims
                ),
            ));
        }
        let max = lab.data.iter().copied().max().unwrap_or(0) as usize;
        // The hash covers the decompressed bytes, so it equals the pinned hashes in DATA.md whatever the
        // compression (Debian recompressed Fashion-MNIST's .gz files).
        let mut h = Sha256::new();
        for (p, b) in [(images, &img_bytes), (labels, &lab_bytes)] {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            h.update(format!("{name} {}\n", sha256_bytes(b)));
        }
        let identity = DataIdentity {
            path: images.parent().unwrap_or(Path::new(".")).display().to_string(),
            format: "idx".into(),
            split: split.map(|s| s.to_string()),
            count: n,
            sha256: hex::encode(h.finalize()),
            hashed: "files".into(),
        };
        Ok(IdxDataset {
            images: img.data,
            labels: lab.data,
            height,
            width,
            classes: numbered_classes((max + 1).max(10)),
            identity,
        })
    }

    /// Open the `train` or `t10k` pair inside a folder (names as MNIST ships them: `t10k-images-idx3-ubyte`,
    /// `t10k-images.idx3-ubyte.gz`, …).
    pub fn open_dir(dir: &Path, split: Split) -> Result<Self, DataError> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let images = find_member(dir, prefix, "images")?;
        let labels = find_member(dir, prefix, "labels")?;
        Self::open_pair(&images, &labels, Some(split))
    }
}

fn find_member(dir: &Path, prefix: &str, kind: &str) -> Result<PathBuf, DataError> {
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(DataError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{prefix}-{kind}")) && !n.starts_with("._"))
        })
        .collect();
    hits.sort();
    // Prefer the uncompressed file when both are present.
    hits.sort_by_key(|p| p.extension().is_some_and(|e| e == "gz"));
    hits.into_iter().next().ok_or_else(|| {
        DataError::format(
            dir,
            format!("no IDX file named {prefix}-{kind}* (expected e.g. {prefix}-{kind}-idx…-ubyte[.gz])"),
        )
    })
}

/// Whether a folder looks like an IDX set.
pub fn looks_like_idx_dir(dir: &Path) -> bool {
    find_member(dir, "t10k", "images").is_ok() || find_member(dir, "train", "images").is_ok()
}

impl Dataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn class_names(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, i: usize) -> i64 {
        i64::from(self.labels[i])
    }
    fn sample(&self, i: usize) -> Result<Sample, DataError> {
        let px = self.height * self.width;
        Ok(Sample {
            image: Image::u8(self.height, self.width, 1, self.images[i * px..(i + 1) * px].to_vec()),
            label: self.label(i),
        })
    }
    fn identity(&self) -> &DataIdentity {
        &self.identity
    }
}

/// Encode an IDX u8 tensor (tests and tools write small sets with it).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_round_trip_and_truncation() {
        let bytes = encode_idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let a = parse_idx(Path::new("x"), &bytes).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data[11], 12);
        let e = parse_idx(Path::new("x.idx"), &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            e.to_string().contains("x.idx") && e.to_string().contains("need 12 bytes"),
            "{e}"
        );
        let e = parse_idx(Path::new("x.idx"), b"PNG\x00").unwrap_err();
        assert!(e.to_string().contains("first two bytes"), "{e}");
    }
}
