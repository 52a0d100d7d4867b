//! ImageFolder: `root/<class>/<image>`; class index = position of the folder name in sorted order (as
//! torchvision's `ImageFolder`). Images are decoded on demand, so a set larger than memory streams through.

use std::path::{Path, PathBuf};

use super::identity::sha256_bytes;
use super::{DataError, DataIdentity, Dataset, Image, Sample};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

pub struct FolderDataset {
    files: Vec<(PathBuf, i64)>,
    classes: Vec<String>,
    identity: DataIdentity,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(DataError::io(dir))?
        .map(|e| e.map(|e| e.path()).map_err(DataError::io(dir)))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

impl FolderDataset {
    /// Scan `root`. An empty class folder is an error (a silently missing class shifts every later index).
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?
            .into_iter()
            .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        if class_dirs.is_empty() {
            return Err(DataError::format(
                root,
                "no class folders (ImageFolder layout is root/<class>/<image>)",
            ));
        }
        let mut files = Vec::new();
        let mut classes = Vec::new();
        let mut manifest = String::new();
        for (ci, dir) in class_dirs.iter().enumerate() {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let images: Vec<PathBuf> = sorted_entries(dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            if images.is_empty() {
                return Err(DataError::EmptyClass { path: dir.clone() });
            }
            for img in images {
                let size = std::fs::metadata(&img).map_err(DataError::io(&img))?.len();
                let rel = img.strip_prefix(root).unwrap_or(&img).display().to_string();
                manifest.push_str(&format!("{rel} {size}\n"));
                files.push((img, ci as i64));
            }
            classes.push(name);
        }
        let identity = DataIdentity {
            path: root.display().to_string(),
            format: "folder".into(),
            split: None,
            count: files.len(),
            sha256: sha256_bytes(manifest.as_bytes()),
            hashed: "manifest".into(),
        };
        Ok(FolderDataset {
            files,
            classes,
            identity,
        })
    }

    pub fn path(&self, i: usize) -> &Path {
        &self.files[i].0
    }
}

/// Decode a PNG/JPEG file to HWC u8 RGB, as torchvision's loader does (`Image.convert("RGB")`).
pub fn decode_rgb(path: &Path) -> Result<Image, DataError> {
    let bytes = std::fs::read(path).map_err(DataError::io(path))?;
    let img = image::load_from_memory(&bytes).map_err(|e| DataError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let rgb = img.into_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(Image::u8(h as usize, w as usize, 3, rgb.into_raw()))
}

impl Dataset for FolderDataset {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn class_names(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, i: usize) -> i64 {
        self.files[i].1
    }
    fn sample(&self, i: usize) -> Result<Sample, DataError> {
        let (path, label) = &self.files[i];
        Ok(Sample {
            image: decode_rgb(path)?,
            label: *label,
        })
    }
    fn identity(&self) -> &DataIdentity {
        &self.identity
    }
}
