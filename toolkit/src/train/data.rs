//! The in-memory tensors the training loop feeds, built through `toolkit::data` (the readers and presets
//! `ratio eval` uses): normalized NCHW floats plus int64 labels, with the data identity and the preset
//! fingerprint recorded next to every number.

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::data::loader::{self, OnCorrupt};
use crate::data::preprocess::{DType, Layout, Preset};
use crate::data::{self as ds, Dataset, Format, OpenOptions, Split};

#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    pub path: String,
    pub format: String,
    /// sha256 of the data as `toolkit::data` identifies it (see `DataIdentity::hashed`).
    pub sha256: String,
    /// Which samples: the set's own split, or the hold-out rule applied to a set without splits.
    pub split: String,
    /// Samples in this part (before `--train-limit`).
    pub count: usize,
    /// Preset name, e.g. `fashion-mnist`.
    pub preprocess: String,
    /// sha256 of the preset's canonical pipeline JSON (the same value `ratio eval` records).
    pub preset_fingerprint: String,
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

    /// Samples at `positions` (preprocessed as for evaluation) and their labels.
    pub fn batch(&self, positions: &[usize]) -> Result<(Vec<f32>, Vec<i64>)> {
        let mut x = Vec::with_capacity(positions.len() * self.sample_len());
        for &p in positions {
            x.extend_from_slice(self.sample(p));
        }
        Ok((x, positions.iter().map(|&p| self.y[p]).collect()))
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
pub fn load(spec: &DataSpec) -> Result<(TensorSet, TensorSet)> {
    let preset = &spec.preset;
    preset.validate()?;
    if preset.pipeline.layout != Layout::Nchw || preset.pipeline.dtype != DType::F32 {
        bail!(
            "preset '{}': training feeds NCHW f32 tensors, the preset gives {:?} {:?}",
            preset.name,
            preset.pipeline.layout,
            preset.pipeline.dtype
        );
    }
    let open = |split: Split| -> Result<Box<dyn Dataset>> {
        ds::open(
            &spec.data,
            &OpenOptions {
                format: spec.format,
                split,
            },
        )
        .with_context(|| format!("opening dataset '{}'", spec.data))
    };
    let train_ds = open(spec.split)?;
    let has_splits = train_ds.identity().split.is_some();
    if has_splits && spec.split == Split::Train {
        let val_ds = open(Split::Test)?;
        let all = |d: &dyn Dataset| (0..d.len()).collect::<Vec<_>>();
        let tr = materialize(train_ds.as_ref(), preset, &all(train_ds.as_ref()), "train".into())?;
        let va = materialize(val_ds.as_ref(), preset, &all(val_ds.as_ref()), "test".into())?;
        check_same_shape(&tr, &va)?;
        return Ok((tr, va));
    }
    let base = train_ds
        .identity()
        .split
        .clone()
        .map_or(String::new(), |s| format!("{s}, "));
    let (tri, vai): (Vec<usize>, Vec<usize>) = (0..train_ds.len()).partition(|i| i % HOLDOUT != HOLDOUT - 1);
    let d = train_ds.as_ref();
    let tr = materialize(
        d,
        preset,
        &tri,
        format!("{base}train: index % {HOLDOUT} != {}", HOLDOUT - 1),
    )?;
    let va = materialize(
        d,
        preset,
        &vai,
        format!("{base}validation: index % {HOLDOUT} == {}", HOLDOUT - 1),
    )?;
    Ok((tr, va))
}

fn check_same_shape(tr: &TensorSet, va: &TensorSet) -> Result<()> {
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

/// Decode and preprocess `indices` of `d` with the shared batch loader (parallel, same code as eval).
fn materialize(d: &dyn Dataset, preset: &Preset, indices: &[usize], split: String) -> Result<TensorSet> {
    let id = d.identity();
    if indices.is_empty() {
        bail!("{} ({split}): no samples", id.path);
    }
    // Bounded chunks keep the per-sample temporaries of the parallel decode small.
    let mut x = Vec::new();
    let mut y = Vec::with_capacity(indices.len());
    let mut dims = [0usize; 3];
    for chunk in indices.chunks(4096) {
        let b = loader::load_batch(d, preset, chunk, OnCorrupt::Fail)
            .with_context(|| format!("preprocessing {} with preset '{}'", id.path, preset.name))?;
        if y.is_empty() {
            dims = b.dims;
            x.reserve(indices.len() * dims.iter().product::<usize>());
        } else if b.dims != dims {
            bail!("{}: images of different sizes ({:?} and {:?})", id.path, dims, b.dims);
        }
        x.extend_from_slice(&b.data);
        y.extend_from_slice(&b.labels);
    }
    let [h, w, c] = dims;
    Ok(TensorSet {
        x,
        sample_shape: [c, h, w],
        y,
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
    })
}
