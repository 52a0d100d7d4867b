//! The scikit-learn digits CSV (optdigits): 64 pixel columns (0–16, an 8×8 image row by row) then the label,
//! no header; plain or gzip.

use std::path::Path;

use super::identity::sha256_bytes;
use super::idx::read_maybe_gz;
use super::{DataError, DataIdentity, Dataset, Image, Sample, numbered_classes};

pub struct CsvDataset {
    images: Vec<u8>,
    labels: Vec<i64>,
    side: usize,
    classes: Vec<String>,
    identity: DataIdentity,
}

impl CsvDataset {
    /// Rows of `side²` pixel values then a label. Pixels must be integers in 0..=255 (digits uses 0–16).
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let bytes = read_maybe_gz(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| DataError::format(path, format!("not UTF-8 text: {e}")))?;
        let mut images = Vec::new();
        let mut labels = Vec::new();
        let mut width = None;
        for (ln, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let at = |r: String| DataError::format(path, format!("line {}: {r}", ln + 1));
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if *width.get_or_insert(cells.len()) != cells.len() {
                return Err(at(format!(
                    "{} columns, earlier lines have {}",
                    cells.len(),
                    width.unwrap_or(0)
                )));
            }
            let (label, px) = cells.split_last().ok_or_else(|| at("empty row".into()))?;
            for c in px {
                let v: f64 = c.parse().map_err(|_| at(format!("pixel '{c}' is not a number")))?;
                if !(0.0..=255.0).contains(&v) || v.fract() != 0.0 {
                    return Err(at(format!("pixel {v} is not an integer in 0..=255")));
                }
                images.push(v as u8);
            }
            let l: f64 = label
                .parse()
                .map_err(|_| at(format!("label '{label}' is not a number")))?;
            if l < 0.0 || l.fract() != 0.0 {
                return Err(at(format!("label {l} is not a non-negative integer")));
            }
            labels.push(l as i64);
        }
        let npx = width.map_or(0, |w| w - 1);
        let side = (npx as f64).sqrt().round() as usize;
        if labels.is_empty() || side * side != npx {
            return Err(DataError::format(
                path,
                format!("expected rows of a square image's pixels then a label; found {npx} pixel columns"),
            ));
        }
        let max = labels.iter().copied().max().unwrap_or(0) as usize;
        let identity = DataIdentity {
            path: path.display().to_string(),
            format: "csv".into(),
            split: None,
            count: labels.len(),
            sha256: sha256_bytes(&bytes),
            hashed: "files".into(),
        };
        Ok(CsvDataset {
            images,
            labels,
            side,
            classes: numbered_classes(max + 1),
            identity,
        })
    }
}

impl Dataset for CsvDataset {
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
        self.labels[i]
    }
    fn sample(&self, i: usize) -> Result<Sample, DataError> {
        let px = self.side * self.side;
        Ok(Sample {
            image: Image::u8(self.side, self.side, 1, self.images[i * px..(i + 1) * px].to_vec()),
            label: self.labels[i],
        })
    }
    fn identity(&self) -> &DataIdentity {
        &self.identity
    }
}
