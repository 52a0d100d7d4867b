//! Batches for the analyses from `toolkit::data`: open the set, check the preset against the model input, stream
//! preprocessed batches from the prefetch loader, and describe the data for the record.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use anyhow::Context;
use ndarray::ArrayD;
use reports::schema::richness::DataRef;

use super::capture::Batch;
use crate::data::loader::{self, LoadError, LoaderConfig, OnCorrupt};
use crate::data::preprocess::{Layout, Preset};
use crate::data::{self, OpenOptions, Split};

pub struct DataSource {
    pub data: DataRef,
    pub classes: usize,
    layout: Layout,
    rx: Receiver<Result<loader::Batch, LoadError>>,
    _handle: JoinHandle<()>,
}

/// Open `data` with `preset` for a model whose data input is `input` with `dims` (`None` = dynamic).
pub fn open_source(
    data: &str,
    preset: &str,
    split: Split,
    batch: usize,
    samples: usize,
    input: &str,
    dims: &[Option<i64>],
) -> anyhow::Result<DataSource> {
    let ds: Arc<dyn data::Dataset> = Arc::from(
        data::open(
            data,
            &OpenOptions {
                split,
                ..Default::default()
            },
        )
        .with_context(|| format!("opening --data {data}"))?,
    );
    let preset = Preset::load(preset)?;
    if ds.is_empty() {
        anyhow::bail!("{data}: the data set is empty");
    }
    let first = ds.sample(0).with_context(|| format!("{data}: reading sample 0"))?;
    let shape: Vec<i64> = dims.iter().map(|d| d.unwrap_or(-1)).collect();
    let img = &first.image;
    preset.check_fits(input, &shape, [img.height, img.width, img.channels])?;
    let id = ds.identity().clone();
    let data_ref = DataRef {
        path: id.path.clone(),
        format: id.format.clone(),
        split: id.split.clone(),
        sha256: id.sha256.clone(),
        preset: preset.name.clone(),
        preset_fingerprint: preset.fingerprint(),
    };
    let layout = preset.pipeline.layout;
    let classes = ds.num_classes();
    let cfg = LoaderConfig {
        batch: batch.max(1),
        limit: Some(samples),
        prefetch: 2,
        on_corrupt: OnCorrupt::Fail,
    };
    let (rx, handle) = loader::spawn(ds, Arc::new(preset), cfg);
    Ok(DataSource {
        data: data_ref,
        classes,
        layout,
        rx,
        _handle: handle,
    })
}

impl Iterator for DataSource {
    type Item = anyhow::Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rx.recv().ok()?;
        Some(b.map_err(anyhow::Error::from).and_then(|b| {
            let n = b.labels.len();
            let [h, w, c] = b.dims;
            let shape = match self.layout {
                Layout::Nchw => vec![n, c, h, w],
                Layout::Nhwc => vec![n, h, w, c],
            };
            let x = ArrayD::from_shape_vec(shape, b.data).context("batch shape")?;
            let labels = b
                .labels
                .iter()
                .map(|&l| u32::try_from(l).with_context(|| format!("negative label {l}")))
                .collect::<anyhow::Result<Vec<u32>>>()?;
            Ok(Batch {
                x,
                labels: Some(labels),
            })
        }))
    }
}

/// Negative mass at the input of every rectifier of `model` (activation node name → share of pre-activation L1
/// mass below 0) over the first `samples` training samples of `data` preprocessed with `preset`. The training
/// split keeps the placement decision independent of the test images it is later evaluated on. This is what
/// `ratio-convert --keep by-negative-mass` ranks by.
pub fn negative_mass_scores(
    model: &converters::Model,
    data: &str,
    preset: &str,
    samples: usize,
) -> anyhow::Result<std::collections::HashMap<String, f64>> {
    let (input, _) = super::data_input(model)?;
    let dims = model.input_dims(&input);
    let source = open_source(data, preset, Split::Train, 250, samples, &input, &dims)?;
    super::negative_mass_scores_from_batches(model, source, samples, &crate::runtime::RuntimeConfig::cpu())
}
