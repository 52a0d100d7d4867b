//! Batches: samples decoded and preprocessed in parallel (rayon), produced on a prefetch thread into a bounded
//! channel so decoding overlaps with the model run and at most `prefetch + 2` batches live at once. Inference
//! uses [`spawn`] (dataset order, a preset); training uses [`Prefetch`] over its own plan of batches and
//! [`decode_into`] with its own per-sample transform.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::preprocess::{PreprocessError, Preset};
use super::{DataError, Dataset, Sample};

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

/// Decode the samples at `indices` in parallel, each through `f(k, sample, slot)` into its own `out.len() /
/// indices.len()` values of `out`. The first failure in index order is returned, so errors are reproducible.
pub fn decode_into<F>(ds: &dyn Dataset, indices: &[usize], out: &mut [f32], f: F) -> Result<(), LoadError>
where
    F: Fn(usize, Sample, &mut [f32]) -> Result<(), PreprocessError> + Sync,
{
    if indices.is_empty() {
        return Ok(());
    }
    let per = out.len() / indices.len();
    let results: Vec<Result<(), LoadError>> = out
        .par_chunks_mut(per.max(1))
        .zip(indices.par_iter())
        .enumerate()
        .map(|(k, (slot, &i))| {
            let s = ds.sample(i)?;
            f(k, s, slot).map_err(|source| LoadError::Preprocess { index: i, source })
        })
        .collect();
    results.into_iter().collect()
}

/// Run `make(0)`, `make(1)`, … `make(count - 1)` on a thread, at most `depth` results ahead of the consumer; the
/// thread stops after the first error or when the receiver is dropped.
fn produce<T, F>(count: usize, depth: usize, mut make: F) -> (Receiver<Result<T, LoadError>>, JoinHandle<()>)
where
    T: Send + 'static,
    F: FnMut(usize) -> Result<T, LoadError> + Send + 'static,
{
    let (tx, rx) = sync_channel(depth.max(1));
    let handle = std::thread::spawn(move || {
        for b in 0..count {
            let item = make(b);
            let stop = item.is_err();
            // A closed receiver means the consumer gave up; stop decoding.
            if tx.send(item).is_err() || stop {
                return;
            }
        }
    });
    (rx, handle)
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
    let step = cfg.batch.max(1);
    produce(indices.len().div_ceil(step), cfg.prefetch, move |b| {
        let idx = &indices[b * step..((b + 1) * step).min(indices.len())];
        load_batch(ds.as_ref(), &preset, idx, cfg.on_corrupt)
    })
}

/// A bounded stream of `count` items made on a background thread, in order, that records how long the consumer
/// waited for them (the time a training step stood idle on data).
pub struct Prefetch<T> {
    rx: Option<Receiver<Result<T, LoadError>>>,
    handle: Option<JoinHandle<()>>,
    waited: Duration,
}

impl<T: Send + 'static> Prefetch<T> {
    /// Make items `0..count` with `make`, up to `depth` ahead.
    pub fn start<F>(count: usize, depth: usize, make: F) -> Self
    where
        F: FnMut(usize) -> Result<T, LoadError> + Send + 'static,
    {
        let (rx, handle) = produce(count, depth, make);
        Prefetch {
            rx: Some(rx),
            handle: Some(handle),
            waited: Duration::ZERO,
        }
    }

    /// The next item; `None` after the last one (or after the thread stopped on an error it already sent).
    pub fn next_item(&mut self) -> Option<Result<T, LoadError>> {
        let t = Instant::now();
        let item = self.rx.as_ref()?.recv().ok();
        self.waited += t.elapsed();
        item
    }

    /// Total time spent blocked in [`Prefetch::next_item`].
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Close the channel first so a producer blocked on a full channel wakes up and stops.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
