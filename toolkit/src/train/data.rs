//! The in-memory tensors the training loop feeds: normalized NCHW floats plus int64 labels, with the identity
//! (file, sha256, split, preprocessing) recorded next to every number. Readers cover the two sets the issue's
//! tests use (sklearn digits CSV, MNIST IDX); `toolkit::data` supersedes them when it lands.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    pub path: String,
    pub sha256: String,
    pub split: String,
    /// How pixels became inputs, e.g. `x/16` or `(x/255-0.1307)/0.3081`.
    pub preprocess: String,
}

#[derive(Debug, Clone)]
pub struct TensorSet {
    /// N × C × H × W values, sample-major.
    pub x: Vec<f32>,
    pub sample_shape: [usize; 3],
    pub y: Vec<i64>,
    pub classes: usize,
    pub info: DataInfo,
}

impl TensorSet {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.x[i * n..(i + 1) * n]
    }

    /// First label outside [0, classes), with its index.
    pub fn bad_label(&self, classes: usize) -> Option<(usize, i64)> {
        self.y
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l as usize >= classes)
            .map(|(i, &l)| (i, l))
    }
}

/// A named preprocessing recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// sklearn digits: 8×8, values 0–16, scaled by 1/16.
    Digits,
    /// MNIST: 28×28 bytes, x/255 then (x − 0.1307)/0.3081 (what mnist_cnn.onnx was trained with).
    Mnist,
}

fn read_gz(path: &Path) -> Result<(Vec<u8>, String)> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&raw))
    };
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not a valid gzip file", path.display()))?;
        Ok((out, sha))
    } else {
        Ok((raw, sha))
    }
}

/// Train and test sets for `preset` from `path` (digits: the CSV file, split 4:1 by index; MNIST: the folder
/// with the four IDX files).
pub fn load(path: &Path, preset: Preset) -> Result<(TensorSet, TensorSet)> {
    match preset {
        Preset::Digits => load_digits(path),
        Preset::Mnist => Ok((load_mnist(path, "train")?, load_mnist(path, "t10k")?)),
    }
}

fn load_digits(path: &Path) -> Result<(TensorSet, TensorSet)> {
    let (bytes, sha) = read_gz(path)?;
    let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    let mut rows: Vec<(Vec<f32>, i64)> = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 65 {
            bail!(
                "{}:{}: expected 64 pixels and a label, found {} columns",
                path.display(),
                ln + 1,
                cells.len()
            );
        }
        let parse = |s: &str| s.trim().parse::<f32>();
        let px: Result<Vec<f32>, _> = cells[..64].iter().map(|c| parse(c)).collect();
        let (Ok(px), Ok(label)) = (px, parse(cells[64])) else {
            if ln == 0 {
                continue; // header row
            }
            bail!("{}:{}: a cell is not a number", path.display(), ln + 1);
        };
        rows.push((px.into_iter().map(|v| v / 16.0).collect(), label as i64));
    }
    if rows.is_empty() {
        bail!("{}: no samples", path.display());
    }
    let classes = rows.iter().map(|r| r.1).max().unwrap_or(0) as usize + 1;
    let split = |test: bool| {
        let picked: Vec<&(Vec<f32>, i64)> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 5 == 4) == test)
            .map(|(_, r)| r)
            .collect();
        TensorSet {
            x: picked.iter().flat_map(|r| r.0.iter().copied()).collect(),
            sample_shape: [1, 8, 8],
            y: picked.iter().map(|r| r.1).collect(),
            classes,
            info: DataInfo {
                path: path.display().to_string(),
                sha256: sha.clone(),
                split: if test {
                    "test: index % 5 == 4"
                } else {
                    "train: index % 5 != 4"
                }
                .into(),
                preprocess: "x/16".into(),
            },
        }
    };
    Ok((split(false), split(true)))
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading folder {}", dir.display()))?;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    names
        .into_iter()
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(stem) && !n.starts_with("._"))
        })
        .with_context(|| format!("{}: no file named {stem}*", dir.display()))
}

fn idx(path: &Path, want_dims: usize) -> Result<(Vec<usize>, Vec<u8>, String)> {
    let (b, sha) = read_gz(path)?;
    if b.len() < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0x08 || b[3] as usize != want_dims {
        bail!(
            "{}: not an IDX file of unsigned bytes with {want_dims} dims",
            path.display()
        );
    }
    let mut dims = Vec::new();
    for i in 0..want_dims {
        let o = 4 + 4 * i;
        let d = b
            .get(o..o + 4)
            .with_context(|| format!("{}: truncated header", path.display()))?;
        dims.push(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize);
    }
    let body = b[4 + 4 * want_dims..].to_vec();
    if body.len() != dims.iter().product::<usize>() {
        bail!(
            "{}: {} data bytes, dims {dims:?} need {}",
            path.display(),
            body.len(),
            dims.iter().product::<usize>()
        );
    }
    Ok((dims, body, sha))
}

fn load_mnist(dir: &Path, split: &str) -> Result<TensorSet> {
    let (idims, pixels, isha) = idx(&find(dir, &format!("{split}-images"))?, 3)?;
    let (ldims, labels, _) = idx(&find(dir, &format!("{split}-labels"))?, 1)?;
    if idims[0] != ldims[0] {
        bail!(
            "{}: {} images but {} labels in split {split}",
            dir.display(),
            idims[0],
            ldims[0]
        );
    }
    Ok(TensorSet {
        x: pixels.iter().map(|&p| (p as f32 / 255.0 - 0.1307) / 0.3081).collect(),
        sample_shape: [1, idims[1], idims[2]],
        y: labels.iter().map(|&l| l as i64).collect(),
        classes: 10,
        info: DataInfo {
            path: dir.display().to_string(),
            sha256: isha,
            split: split.into(),
            preprocess: "(x/255-0.1307)/0.3081".into(),
        },
    })
}
