//! The samples calibration fits on (the first N of the training split) and the held-out samples it is measured on
//! (the test split when the set has one, else the samples after the calibration ones), streamed through
//! `toolkit::data`'s prefetching loader. Calibration batches are kept in memory after the first pass when they
//! fit in [`CACHE_BYTES`], since every fitted layer takes one pass over them; otherwise each pass streams again.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use converters::Model;
use ndarray::{ArrayD, IxDyn};
use reports::schema::richness::DataRef;

use crate::data::loader::{self, LoaderConfig, OnCorrupt};
use crate::data::preprocess::{DType, Layout, Preset};
use crate::data::{self, Dataset, OpenOptions, Split};

/// Calibration batches kept in memory up to this many bytes of f32.
pub const CACHE_BYTES: usize = 256 << 20;

/// What to open: `--data`, `--preset`, how many samples to fit on and to measure on.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub data: String,
    pub preset: String,
    pub samples: usize,
    /// Held-out samples to measure on (`None`: the whole test split, or 10,000 after the calibration samples).
    pub eval_samples: Option<usize>,
    pub batch: usize,
}

pub struct CalibData {
    ds: Arc<dyn Dataset>,
    eval_ds: Arc<dyn Dataset>,
    preset: Arc<Preset>,
    calib: Vec<usize>,
    eval: Vec<usize>,
    pub batch: usize,
    /// Calibration set and preprocessing.
    pub data: DataRef,
    /// Held-out set.
    pub eval_data: DataRef,
    /// Which samples measure the stages, in words.
    pub held_out: String,
    cache: Option<Vec<ArrayD<f32>>>,
}

fn data_ref(ds: &dyn Dataset, preset: &Preset) -> DataRef {
    let id = ds.identity();
    DataRef {
        path: id.path.clone(),
        format: id.format.clone(),
        split: id.split.clone(),
        sha256: id.sha256.clone(),
        preset: preset.name.clone(),
        preset_fingerprint: preset.fingerprint(),
    }
}

impl CalibData {
    pub fn open(spec: &SampleSpec) -> Result<Self> {
        let preset = Preset::load(&spec.preset)?;
        if preset.pipeline.dtype != DType::F32 {
            bail!(
                "preset {}: calibration feeds f32 inputs; the preset produces f16",
                spec.preset
            );
        }
        if spec.samples == 0 || spec.batch == 0 {
            bail!("--samples and --batch must be at least 1");
        }
        let open = |split| {
            data::open(
                &spec.data,
                &OpenOptions {
                    split,
                    ..Default::default()
                },
            )
            .with_context(|| format!("opening --data {}", spec.data))
        };
        let ds: Arc<dyn Dataset> = Arc::from(open(Split::Train)?);
        if ds.is_empty() {
            bail!("{}: the data set is empty", ds.identity().path);
        }
        let n = spec.samples.min(ds.len());
        let calib: Vec<usize> = (0..n).collect();
        let (eval_ds, eval, held_out) = if ds.identity().split.as_deref() == Some("train") {
            let test: Arc<dyn Dataset> = Arc::from(open(Split::Test)?);
            let m = spec.eval_samples.map_or(test.len(), |e| e.min(test.len()));
            let words = format!("the first {m} samples of the test split");
            (test, (0..m).collect::<Vec<_>>(), words)
        } else {
            let end = ds.len().min(n + spec.eval_samples.unwrap_or(10_000));
            if end <= n {
                bail!(
                    "{}: all {} samples are used for calibration and the set has no test split; no held-out samples remain (lower --samples)",
                    ds.identity().path,
                    ds.len()
                );
            }
            let words = format!("samples {n}..{end} of the set (after the calibration samples)");
            (ds.clone(), (n..end).collect(), words)
        };
        if eval.is_empty() {
            bail!("{}: no held-out samples to measure on", eval_ds.identity().path);
        }
        Ok(CalibData {
            data: data_ref(ds.as_ref(), &preset),
            eval_data: data_ref(eval_ds.as_ref(), &preset),
            ds,
            eval_ds,
            preset: Arc::new(preset),
            calib,
            eval,
            batch: spec.batch,
            held_out,
            cache: None,
        })
    }

    pub fn samples(&self) -> usize {
        self.calib.len()
    }

    pub fn eval_samples(&self) -> usize {
        self.eval.len()
    }

    /// The data fits `model` (input `input`, `classes` output classes), or one line saying why not.
    pub fn check_fits(&self, model: &Model, input: &str, classes: Option<usize>) -> Result<()> {
        let path = &self.data.path;
        let first = self.ds.sample(0).with_context(|| format!("{path}: reading sample 0"))?;
        let dims: Vec<i64> = model.input_dims(input).iter().map(|d| d.unwrap_or(-1)).collect();
        let img = &first.image;
        if let Err(e) = self
            .preset
            .check_fits(input, &dims, [img.height, img.width, img.channels])
        {
            bail!("{path}: calibration data does not fit {}: {e}", model.display_name());
        }
        if let Some(k) = classes {
            let sets = [(&self.ds, &self.calib), (&self.eval_ds, &self.eval)];
            for (ds, idx) in sets {
                if let Some(&i) = idx.iter().find(|&&i| !(0..k as i64).contains(&ds.label(i))) {
                    bail!(
                        "{}: sample {i} has label {}, outside the {k} classes of {}",
                        ds.identity().path,
                        ds.label(i),
                        model.display_name()
                    );
                }
            }
        }
        Ok(())
    }

    fn to_array(&self, b: loader::Batch) -> Result<ArrayD<f32>> {
        let n = b.labels.len();
        let [h, w, c] = b.dims;
        let shape = match self.preset.pipeline.layout {
            Layout::Nchw => vec![n, c, h, w],
            Layout::Nhwc => vec![n, h, w, c],
        };
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), b.data)?)
    }

    fn stream(
        &self,
        ds: &Arc<dyn Dataset>,
        indices: &[usize],
        mut f: impl FnMut(&ArrayD<f32>, &[i64]) -> Result<()>,
    ) -> Result<()> {
        let cfg = LoaderConfig {
            batch: self.batch,
            limit: None,
            prefetch: 2,
            on_corrupt: OnCorrupt::Fail,
        };
        let (rx, handle) = loader::spawn_indices(ds.clone(), self.preset.clone(), indices.to_vec(), cfg);
        for b in rx {
            let b = b.with_context(|| format!("reading {}", ds.identity().path))?;
            let labels = b.labels.clone();
            f(&self.to_array(b)?, &labels)?;
        }
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the data loading thread panicked"))
    }

    /// Run `f` on every calibration batch, in order.
    pub fn for_each_calib(&mut self, mut f: impl FnMut(&ArrayD<f32>) -> Result<()>) -> Result<()> {
        if let Some(cache) = &self.cache {
            return cache.iter().try_for_each(f);
        }
        let per = self.preset_len()?;
        let keep = self.calib.len() * per * 4 <= CACHE_BYTES;
        let mut kept = Vec::new();
        self.stream(&self.ds, &self.calib, |x, _| {
            f(x)?;
            if keep {
                kept.push(x.clone());
            }
            Ok(())
        })?;
        if keep {
            self.cache = Some(kept);
        }
        Ok(())
    }

    /// Run `f` on every held-out batch with its labels, in order.
    pub fn for_each_eval(&self, f: impl FnMut(&ArrayD<f32>, &[i64]) -> Result<()>) -> Result<()> {
        self.stream(&self.eval_ds, &self.eval, f)
    }

    /// Floats per preprocessed sample.
    fn preset_len(&self) -> Result<usize> {
        let s = self.ds.sample(0)?;
        let [h, w, c] = self
            .preset
            .output_hwc([s.image.height, s.image.width, s.image.channels])?;
        Ok(h * w * c)
    }
}
