//! Datasets: readers for the formats `ratio eval` and `ratio train` consume, one common [`Dataset`] trait, the
//! identity recorded with every number, preprocessing presets, a prefetching batch loader and `data fetch`.

pub mod cifar;
pub mod csv;
pub mod error;
pub mod fetch;
pub mod folder;
pub mod identity;
pub mod idx;
pub mod image;
pub mod loader;
pub mod npy;
pub mod open;
pub mod preprocess;

pub use error::DataError;
pub use identity::DataIdentity;
pub use image::{Image, Pixels, Sample};
pub use open::{Format, OpenOptions, Split, open};

/// A labelled image set with random access. Implementations keep small sets decoded in memory and large ones
/// (ImageFolder) on disk, decoding in [`Dataset::sample`], so memory stays bounded by the batch in flight.
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn num_classes(&self) -> usize;
    /// One name per class index (the class index is the position).
    fn class_names(&self) -> &[String];
    /// Label of sample `i` without decoding its image (used for counting and label checks).
    fn label(&self, i: usize) -> i64;
    /// Decode sample `i` as an HWC image plus its label.
    fn sample(&self, i: usize) -> Result<Sample, DataError>;
    fn identity(&self) -> &DataIdentity;
}

/// Class names `0..n` for sets that carry no names.
pub(crate) fn numbered_classes(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}
