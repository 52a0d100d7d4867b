//! Opening a dataset from a path or a known name, with the format given or guessed.

use std::fmt;
use std::path::{Path, PathBuf};

use super::cifar::{self, CifarDataset};
use super::csv::CsvDataset;
use super::folder::FolderDataset;
use super::idx::{self, IdxDataset};
use super::npy::NpyDataset;
use super::{DataError, Dataset};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Idx,
    Cifar,
    Folder,
    Npy,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Split {
    Train,
    #[default]
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub format: Option<Format>,
    pub split: Split,
}

/// Names `ratio data fetch` knows; `--data NAME` resolves to `.data/NAME` under the current folder.
pub const KNOWN_NAMES: [&str; 3] = ["mnist", "fashion-mnist", "digits"];

/// Resolve `--data`: an existing path as is, else a known name under `.data/`.
pub fn resolve(data: &str) -> Result<PathBuf, DataError> {
    let p = PathBuf::from(data);
    if p.exists() {
        return Ok(p);
    }
    if KNOWN_NAMES.contains(&data) {
        let local = Path::new(".data").join(data);
        if local.exists() {
            return Ok(local);
        }
        return Err(DataError::format(
            &local,
            format!("'{data}' is not fetched yet; run `ratio data fetch {data}` (or pass a path)"),
        ));
    }
    Err(DataError::NotFound { path: p })
}

/// Open `data` (a path or a known name).
pub fn open(data: &str, opts: &OpenOptions) -> Result<Box<dyn Dataset>, DataError> {
    let path = resolve(data)?;
    let format = match opts.format {
        Some(f) => f,
        None => guess(&path)?,
    };
    let ds: Box<dyn Dataset> = match format {
        Format::Idx if path.is_dir() => Box::new(IdxDataset::open_dir(&path, opts.split)?),
        Format::Idx => {
            let labels = labels_for(&path)?;
            Box::new(IdxDataset::open_pair(&path, &labels, None)?)
        }
        Format::Cifar if path.is_dir() => Box::new(CifarDataset::open_files(
            &cifar::split_files(&path, opts.split)?,
            Some(opts.split),
        )?),
        Format::Cifar => Box::new(CifarDataset::open_files(&[path], None)?),
        Format::Folder => Box::new(FolderDataset::open(&path)?),
        Format::Npy if path.is_dir() => Box::new(NpyDataset::open_dir(&path)?),
        Format::Npy => Box::new(NpyDataset::open_npz(&path)?),
        Format::Csv if path.is_dir() => {
            let f = ["digits.csv.gz", "digits.csv"]
                .iter()
                .map(|n| path.join(n))
                .find(|p| p.is_file());
            let f = f.ok_or_else(|| DataError::format(&path, "no digits.csv[.gz] in this folder"))?;
            Box::new(CsvDataset::open(&f)?)
        }
        Format::Csv => Box::new(CsvDataset::open(&path)?),
    };
    Ok(ds)
}

/// The labels file next to an IDX images file: `…images…idx3…` → `…labels…idx1…`.
fn labels_for(images: &Path) -> Result<PathBuf, DataError> {
    let name = images.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !name.contains("images") {
        return Err(DataError::format(
            images,
            "an IDX images file name must contain 'images' to find its labels",
        ));
    }
    let labels = images.with_file_name(name.replace("images", "labels").replace("idx3", "idx1"));
    if labels.is_file() {
        Ok(labels)
    } else {
        Err(DataError::format(
            images,
            format!("its labels file {} does not exist", labels.display()),
        ))
    }
}

fn guess(path: &Path) -> Result<Format, DataError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if path.is_file() {
        return if name.ends_with(".npz") {
            Ok(Format::Npy)
        } else if name.ends_with(".csv") || name.ends_with(".csv.gz") {
            Ok(Format::Csv)
        } else if name.ends_with(".bin") {
            Ok(Format::Cifar)
        } else if name.contains("ubyte") || name.contains("idx") {
            Ok(Format::Idx)
        } else {
            Err(DataError::UnknownFormat {
                path: path.to_path_buf(),
                reason: "file name has no known extension".into(),
            })
        };
    }
    if idx::looks_like_idx_dir(path) {
        return Ok(Format::Idx);
    }
    if cifar::looks_like_cifar_dir(path) {
        return Ok(Format::Cifar);
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(DataError::io(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let has = |ext: &str| entries.iter().any(|p| p.to_string_lossy().ends_with(ext));
    if has(".npy") {
        Ok(Format::Npy)
    } else if has("digits.csv.gz") || has("digits.csv") {
        Ok(Format::Csv)
    } else if entries.iter().any(|p| p.is_dir()) {
        Ok(Format::Folder)
    } else {
        Err(DataError::UnknownFormat {
            path: path.to_path_buf(),
            reason: "folder holds no IDX, CIFAR, .npy or CSV files and no class folders".into(),
        })
    }
}
