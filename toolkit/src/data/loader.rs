//! Batches for inference: samples decoded and preprocessed in parallel (rayon), produced on a prefetch thread into
//! a bounded channel so decoding overlaps with the model run and at most `prefetch + 2` batches live at once.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;

use super::preprocess::{PreprocessError, Preset};
use super::{DataError, Dataset};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnCorrupt {
    /// Leave the image out and count it.
    Skip,
    /// Stop at the first undecodable image.
    #[default]
    Fail,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("sample {index}: {source}")]
    Preprocess { index: usize, source: PreprocessError },
}

/// A preprocessed batch: `data` is `labels.len()` images of `dims` (H, W, C) in the preset's layout.
#[derive(Debug, Clone)]
pub struct Batch {
    pub data: Vec<f32>,
    pub dims: [usize; 3],
    pub labels: Vec<i64>,
    /// Dataset indices of the images kept, in order.
    pub indices: Vec<usize>,
    /// Corrupt images left out (`--on-corrupt skip`): index and the decoder's message with the file name.
    pub skipped: Vec<(usize, String)>,
}

#[derive(Debug, Clone, Copy)]
pub struct LoaderConfig {
    pub batch: usize,
    /// Use only the first `limit` samples.
    pub limit: Option<usize>,
    /// Batches decoded ahead of the consumer.
    pub prefetch: usize,
    pub on_corrupt: OnCorrupt,
}

impl LoaderConfig {
    pub fn samples(&self, ds: &dyn Dataset) -> usize {
        self.limit.map_or(ds.len(), |l| l.min(ds.len()))
    }
}

/// One decoded, preprocessed sample: values, output (H, W, C), label.
type Decoded = (Vec<f32>, [usize; 3], i64);

/// Why a sample did not make it into the batch.
enum Failure {
    /// A corrupt image under `--on-corrupt skip`.
    Skip(DataError),
    Fatal(LoadError),
}

/// Decode and preprocess the samples at `indices` into one batch.
pub fn load_batch(
    ds: &dyn Dataset,
    preset: &Preset,
    indices: &[usize],
    on_corrupt: OnCorrupt,
) -> Result<Batch, LoadError> {
    let items: Vec<Result<Decoded, Failure>> = indices
        .par_iter()
        .map(|&i| match ds.sample(i) {
            Ok(s) => preset
                .apply(&s.image)
                .map(|(v, d)| (v, d, s.label))
                .map_err(|source| Failure::Fatal(LoadError::Preprocess { index: i, source })),
            Err(e @ DataError::Corrupt { .. }) if on_corrupt == OnCorrupt::Skip => Err(Failure::Skip(e)),
            Err(e) => Err(Failure::Fatal(LoadError::Data(e))),
        })
        .collect();
    let mut batch = Batch {
        data: Vec::new(),
        dims: [0; 3],
        labels: Vec::with_capacity(indices.len()),
        indices: Vec::with_capacity(indices.len()),
        skipped: Vec::new(),
    };
    for (&i, item) in indices.iter().zip(items) {
        match item {
            Ok((v, d, label)) => {
                if batch.labels.is_empty() {
                    batch.dims = d;
                    batch.data.reserve(v.len() * indices.len());
                } else if d != batch.dims {
                    return Err(LoadError::Preprocess {
                        index: i,
                        source: PreprocessError::Ragged {
                            index: i,
                            got: d,
                            want: batch.dims,
                        },
                    });
                }
                batch.data.extend_from_slice(&v);
                batch.labels.push(label);
                batch.indices.push(i);
            }
            Err(Failure::Skip(e)) => batch.skipped.push((i, e.to_string())),
            Err(Failure::Fatal(e)) => return Err(e),
        }
    }
    Ok(batch)
}

/// Start the prefetch thread. Batches arrive in dataset order; after an error the thread stops.
pub fn spawn(
    ds: Arc<dyn Dataset>,
    preset: Arc<Preset>,
    cfg: LoaderConfig,
) -> (Receiver<Result<Batch, LoadError>>, JoinHandle<()>) {
    let n = cfg.samples(ds.as_ref());
    spawn_indices(ds, preset, (0..n).collect(), cfg)
}

/// [`spawn`] over the samples at `indices`, in that order (`cfg.limit` is not applied).
pub fn spawn_indices(
    ds: Arc<dyn Dataset>,
    preset: Arc<Preset>,
    indices: Vec<usize>,
    cfg: LoaderConfig,
) -> (Receiver<Result<Batch, LoadError>>, JoinHandle<()>) {
    let (tx, rx) = sync_channel(cfg.prefetch.max(1));
    let handle = std::thread::spawn(move || {
        for idx in indices.chunks(cfg.batch.max(1)) {
            let b = load_batch(ds.as_ref(), &preset, idx, cfg.on_corrupt);
            let stop = b.is_err();
            // A closed receiver means the consumer gave up; stop decoding.
            if tx.send(b).is_err() || stop {
                return;
            }
        }
    });
    (rx, handle)
}
