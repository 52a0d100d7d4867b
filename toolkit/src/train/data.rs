//! What the training loop feeds, through `toolkit::data` (the readers and presets `ratio eval` uses): a
//! [`SampleSet`] per part, streamed batch by batch (never the whole set as f32), with the data identity and the
//! preset fingerprint recorded next to every number.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::loader::{self, LoadError};
use crate::data::preprocess::{DType, Layout, PreprocessError, Preset};
use crate::data::{self as ds, Dataset, Format, OpenOptions, Split};
use crate::train::augment::Augment;

/// What a run trained or validated on, as the train record holds it.
pub use reports::schema::train::TrainData as DataInfo;

/// One part (train or validation) of a dataset: which samples, their labels and the preset, decoded on demand.
/// Nothing is held as f32: in-memory readers keep their u8 pixels, image folders stay on disk, and each batch
/// is decoded and transformed in parallel (`data::loader::decode_into`) when it is needed.
#[derive(Clone)]
pub struct SampleSet {
    ds: Arc<dyn Dataset>,
    preset: Arc<Preset>,
    /// Dataset index of each sample of this part.
    indices: Vec<usize>,
    /// Label of each sample (read without decoding), in the same order.
    pub y: Vec<i64>,
    /// `(C, H, W)` of a sample after the preset (the evaluation view).
    pub sample_shape: [usize; 3],
    pub classes: usize,
    pub info: DataInfo,
}

impl std::fmt::Debug for SampleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleSet")
            .field("info", &self.info)
            .field("sample_shape", &self.sample_shape)
            .field("classes", &self.classes)
            .finish()
    }
}

/// Per-sample random stream of epoch `epoch` at `position` in that epoch's order; stream 0 shuffles.
pub fn sample_rng(seed: u64, epoch: u64, position: u64) -> ChaCha8Rng {
    epoch_rng(seed, epoch, 1 + position)
}

/// The random stream `stream` of epoch `epoch`: derived from (seed, epoch), never carried, so `--resume` at an
/// epoch boundary replays exactly what an uninterrupted run does.
pub fn epoch_rng(seed: u64, epoch: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.set_stream(stream);
    r
}

impl SampleSet {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.ds
    }

    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    /// Dataset index of the sample at `position`.
    pub fn index(&self, position: usize) -> usize {
        self.indices[position]
    }

    /// The first `n` samples (all when `n ≥ len`).
    pub fn truncated(&self, n: usize) -> SampleSet {
        let mut s = self.clone();
        let n = n.min(s.len());
        s.indices.truncate(n);
        s.y.truncate(n);
        s
    }

    /// First label outside [0, classes), with its index.
    pub fn bad_label(&self, classes: usize) -> Option<(usize, i64)> {
        self.y
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l as usize >= classes)
            .map(|(i, &l)| (i, l))
    }

    /// The sample at `position`, preprocessed as for evaluation (CHW).
    pub fn sample(&self, position: usize) -> Result<Vec<f32>, LoadError> {
        Ok(self.batch(&[position])?.0)
    }

    /// Samples at `positions`, preprocessed by the preset exactly as `ratio eval` does, and their labels.
    pub fn batch(&self, positions: &[usize]) -> Result<(Vec<f32>, Vec<i64>), LoadError> {
        let want = self.sample_shape;
        let idx: Vec<usize> = positions.iter().map(|&p| self.indices[p]).collect();
        let mut x = vec![0f32; positions.len() * self.sample_len()];
        loader::decode_into(self.ds.as_ref(), &idx, &mut x, |k, s, out| {
            let [c, h, w] = want;
            let got = self
                .preset
                .output_hwc([s.image.height, s.image.width, s.image.channels])?;
            if got != [h, w, c] {
                return Err(PreprocessError::Ragged {
                    index: idx[k],
                    got,
                    want: [h, w, c],
                });
            }
            self.preset.apply_into(&s.image, out).map(|_| ())
        })?;
        Ok((x, positions.iter().map(|&p| self.y[p]).collect()))
    }

    /// Training samples at `positions` (epoch `epoch`, the first at `first` in that epoch's order) through
    /// `augment`, each with its own random stream, and their labels.
    pub fn train_batch(
        &self,
        positions: &[usize],
        augment: &Augment,
        seed: u64,
        epoch: u64,
        first: u64,
    ) -> Result<(Vec<f32>, Vec<i64>), LoadError> {
        let want = augment.train_shape(self.sample_shape);
        let per: usize = want.iter().product();
        let idx: Vec<usize> = positions.iter().map(|&p| self.indices[p]).collect();
        let mut x = vec![0f32; positions.len() * per];
        loader::decode_into(self.ds.as_ref(), &idx, &mut x, |k, s, out| {
            let mut rng = sample_rng(seed, epoch, first + k as u64);
            augment.sample_into(idx[k], &s.image, &self.preset, want, &mut rng, out)
        })?;
        Ok((x, positions.iter().map(|&p| self.y[p]).collect()))
    }
}

/// What `--data/--format/--split/--preset` name.
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// A path, or a name fetched by `ratio data fetch`.
    pub data: String,
    pub format: Option<Format>,
    /// The split trained on; validation uses the test split when it is `train` and the set has splits.
    pub split: Split,
    pub preset: Preset,
}

impl DataSpec {
    /// `preset` is a built-in name or a JSON preset file, as for `ratio eval`.
    pub fn new(data: &str, preset: &str) -> Result<Self> {
        Ok(Self {
            data: data.into(),
            format: None,
            split: Split::Train,
            preset: Preset::load(preset)?,
        })
    }
}

/// Every `HOLDOUT`-th sample (index % 5 == 4) validates when the set has no test split of its own.
const HOLDOUT: usize = 5;

/// Training and validation sets for `spec`. A set with splits (IDX or CIFAR folders) trains on `spec.split`
/// and validates on `test`; a set without (CSV, npz, an image folder, a single file) or `--split test` holds
/// out every fifth sample, so the two never overlap.
pub fn load(spec: &DataSpec) -> Result<(SampleSet, SampleSet)> {
    let preset = Arc::new(spec.preset.clone());
    preset.validate()?;
    if preset.pipeline.layout != Layout::Nchw || preset.pipeline.dtype != DType::F32 {
        bail!(
            "preset '{}': training feeds NCHW f32 tensors, the preset gives {:?} {:?}",
            preset.name,
            preset.pipeline.layout,
            preset.pipeline.dtype
        );
    }
    let open = |split: Split| -> Result<Arc<dyn Dataset>> {
        ds::open(
            &spec.data,
            &OpenOptions {
                format: spec.format,
                split,
            },
        )
        .map(Arc::from)
        .with_context(|| format!("opening dataset '{}'", spec.data))
    };
    let train_ds = open(spec.split)?;
    let has_splits = train_ds.identity().split.is_some();
    if has_splits && spec.split == Split::Train {
        let val_ds = open(Split::Test)?;
        let all = |d: &Arc<dyn Dataset>| (0..d.len()).collect::<Vec<_>>();
        let tr = part(&train_ds, &preset, all(&train_ds), "train".into())?;
        let va = part(&val_ds, &preset, all(&val_ds), "test".into())?;
        check_same_shape(&tr, &va)?;
        return Ok((tr, va));
    }
    let base = train_ds
        .identity()
        .split
        .clone()
        .map_or(String::new(), |s| format!("{s}, "));
    let (tri, vai): (Vec<usize>, Vec<usize>) = (0..train_ds.len()).partition(|i| i % HOLDOUT != HOLDOUT - 1);
    let tr = part(
        &train_ds,
        &preset,
        tri,
        format!("{base}train: index % {HOLDOUT} != {}", HOLDOUT - 1),
    )?;
    let va = part(
        &train_ds,
        &preset,
        vai,
        format!("{base}validation: index % {HOLDOUT} == {}", HOLDOUT - 1),
    )?;
    Ok((tr, va))
}

fn check_same_shape(tr: &SampleSet, va: &SampleSet) -> Result<()> {
    if tr.sample_shape != va.sample_shape || tr.classes != va.classes {
        bail!(
            "{}: the train split gives {:?} samples of {} classes, the test split {:?} of {}",
            tr.info.path,
            tr.sample_shape,
            tr.classes,
            va.sample_shape,
            va.classes
        );
    }
    Ok(())
}

/// The samples at `indices` of `d`: labels read now, pixels left where the reader keeps them. The first sample
/// is decoded once to learn the preset's output shape.
fn part(d: &Arc<dyn Dataset>, preset: &Arc<Preset>, indices: Vec<usize>, split: String) -> Result<SampleSet> {
    let id = d.identity();
    let Some(&first) = indices.first() else {
        bail!("{} ({split}): no samples", id.path);
    };
    let img = d
        .sample(first)
        .with_context(|| format!("reading {} with preset '{}'", id.path, preset.name))?
        .image;
    let [h, w, c] = preset
        .output_hwc([img.height, img.width, img.channels])
        .with_context(|| format!("preprocessing {} with preset '{}'", id.path, preset.name))?;
    Ok(SampleSet {
        y: indices.iter().map(|&i| d.label(i)).collect(),
        ds: Arc::clone(d),
        preset: Arc::clone(preset),
        sample_shape: [c, h, w],
        classes: d.num_classes(),
        info: DataInfo {
            path: id.path.clone(),
            format: id.format.clone(),
            sha256: id.sha256.clone(),
            split,
            count: indices.len(),
            preprocess: preset.name.clone(),
            preset_fingerprint: preset.fingerprint(),
        },
        indices,
    })
}
