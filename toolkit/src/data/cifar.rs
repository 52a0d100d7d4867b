//! CIFAR-10/100 binary batches.
//!
//! CIFAR-10 records are 1 label byte + 3072 pixel bytes (R, G, B planes of 32×32); CIFAR-100 records carry a
//! coarse and a fine label byte first (the fine label is used). Files: `data_batch_{1..5}.bin` / `test_batch.bin`
//! (10) or `train.bin` / `test.bin` (100), with class names in `batches.meta.txt` or `fine_label_names.txt`.

use std::path::{Path, PathBuf};

use super::identity::sha256_files;
use super::{DataError, DataIdentity, Dataset, Image, Sample, Split, numbered_classes};

const PIXELS: usize = 3 * 32 * 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }
    fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }
}

/// Images stored as HWC u8 (converted from the planar records once, at load).
pub struct CifarDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
    identity: DataIdentity,
}

/// Which batch files make up a split inside a CIFAR folder.
pub fn split_files(dir: &Path, split: Split) -> Result<Vec<PathBuf>, DataError> {
    let c10: Vec<PathBuf> = match split {
        Split::Test => vec![dir.join("test_batch.bin")],
        Split::Train => (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect(),
    };
    if c10.iter().all(|p| p.is_file()) {
        return Ok(c10);
    }
    let c100 = dir.join(match split {
        Split::Test => "test.bin",
        Split::Train => "train.bin",
    });
    if c100.is_file() {
        return Ok(vec![c100]);
    }
    Err(DataError::format(
        dir,
        format!(
            "no CIFAR {split} batches: expected {} (CIFAR-10) or {} (CIFAR-100)",
            c10.iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", "),
            c100.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ),
    ))
}

pub fn looks_like_cifar_dir(dir: &Path) -> bool {
    split_files(dir, Split::Test).is_ok() || split_files(dir, Split::Train).is_ok()
}

fn detect_variant(path: &Path, len: usize) -> Result<Variant, DataError> {
    let by_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.starts_with("test_batch") || n.starts_with("data_batch"));
    match (len.is_multiple_of(PIXELS + 1), len.is_multiple_of(PIXELS + 2)) {
        (true, true) => Ok(if by_name == Some(true) {
            Variant::Cifar10
        } else {
            Variant::Cifar100
        }),
        (true, false) => Ok(Variant::Cifar10),
        (false, true) => Ok(Variant::Cifar100),
        (false, false) => Err(DataError::format(
            path,
            format!("{len} bytes is not a whole number of CIFAR-10 (3073-byte) or CIFAR-100 (3074-byte) records"),
        )),
    }
}

impl CifarDataset {
    pub fn open_files(files: &[PathBuf], split: Option<Split>) -> Result<Self, DataError> {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        let mut variant = None;
        for f in files {
            let bytes = std::fs::read(f).map_err(DataError::io(f))?;
            if bytes.is_empty() {
                return Err(DataError::format(f, "empty CIFAR batch file"));
            }
            let v = detect_variant(f, bytes.len())?;
            if variant.is_some_and(|p| p != v) {
                return Err(DataError::format(
                    f,
                    "mixes CIFAR-10 and CIFAR-100 records with the other batches",
                ));
            }
            variant = Some(v);
            let rec = PIXELS + v.label_bytes();
            images.reserve(bytes.len() / rec * PIXELS);
            for r in bytes.chunks_exact(rec) {
                let label = r[v.label_bytes() - 1];
                if usize::from(label) >= v.classes() {
                    return Err(DataError::format(
                        f,
                        format!("record {} has label {label}, outside 0..{}", labels.len(), v.classes()),
                    ));
                }
                labels.push(label);
                let planes = &r[v.label_bytes()..];
                for p in 0..1024 {
                    images.extend_from_slice(&[planes[p], planes[1024 + p], planes[2048 + p]]);
                }
            }
        }
        let Some(variant) = variant else {
            return Err(DataError::format(Path::new("."), "no CIFAR batch files given"));
        };
        let dir = files[0].parent().unwrap_or(Path::new("."));
        let classes = read_names(dir, variant).unwrap_or_else(|| numbered_classes(variant.classes()));
        let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let identity = DataIdentity {
            path: if files.len() == 1 {
                files[0].display().to_string()
            } else {
                dir.display().to_string()
            },
            format: match variant {
                Variant::Cifar10 => "cifar10".into(),
                Variant::Cifar100 => "cifar100".into(),
            },
            split: split.map(|s| s.to_string()),
            count: labels.len(),
            sha256: sha256_files(&refs)?,
            hashed: "files".into(),
        };
        Ok(CifarDataset {
            images,
            labels,
            classes,
            identity,
        })
    }
}

fn read_names(dir: &Path, v: Variant) -> Option<Vec<String>> {
    let file = match v {
        Variant::Cifar10 => "batches.meta.txt",
        Variant::Cifar100 => "fine_label_names.txt",
    };
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    (names.len() == v.classes()).then_some(names)
}

impl Dataset for CifarDataset {
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
        Ok(Sample {
            image: Image::u8(32, 32, 3, self.images[i * PIXELS..(i + 1) * PIXELS].to_vec()),
            label: self.label(i),
        })
    }
    fn identity(&self) -> &DataIdentity {
        &self.identity
    }
}
