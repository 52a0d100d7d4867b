//! Errors of the data layer. Every variant names the file (or folder) it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: dataset path does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{}: corrupt image: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: class folder holds no images (.png, .jpg, .jpeg)", path.display())]
    EmptyClass { path: PathBuf },
    #[error("{}: cannot tell the dataset format ({reason}); pass --format idx|cifar|folder|npy|csv", path.display())]
    UnknownFormat { path: PathBuf, reason: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
        let path = path.into();
        move |source| DataError::Io { path, source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
