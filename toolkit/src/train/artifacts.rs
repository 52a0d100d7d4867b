//! What a training run leaves in its output folder, and the phases that write it: validation of the current
//! weights (through the export hook), checkpoints (`last.ckpt`, `best.ckpt`), inference models (`best.onnx`,
//! `model.onnx`) and JSON-lines metrics. The state is read back from the session here and nowhere else.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use converters::Model;
use converters::proto::ModelProto;

use crate::train::checkpoint::{self, Header};
use crate::train::data::SampleSet;
use crate::train::eval::accuracy;
use crate::train::session::Stepper;
use crate::train::trainer::{EpochRecord, RunIdentity, TrainOptions};

pub(crate) struct RunFiles {
    dir: PathBuf,
    last_ckpt: PathBuf,
    metrics: File,
}

impl RunFiles {
    /// Create the folder, write the train-step graph when asked, and open the metrics log with the run's identity.
    pub(crate) fn create(
        dir: &Path,
        identity: &RunIdentity,
        graph: Option<ModelProto>,
        opts: &TrainOptions,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let (Some(g), Some(graph)) = (&opts.emit_graph, graph) {
            Model::new(graph)
                .save(g, false)
                .with_context(|| format!("writing the train-step graph to {}", g.display()))?;
        }
        let metrics_path = dir.join("metrics.jsonl");
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .with_context(|| format!("opening {}", metrics_path.display()))?;
        writeln!(metrics, "{}", serde_json::json!({"kind": "run", "identity": identity}))?;
        Ok(RunFiles {
            dir: dir.to_path_buf(),
            last_ckpt: dir.join("last.ckpt"),
            metrics,
        })
    }

    pub(crate) fn last_ckpt(&self) -> &Path {
        &self.last_ckpt
    }

    pub(crate) fn model_path(&self) -> PathBuf {
        self.dir.join("model.onnx")
    }

    pub(crate) fn best_model_path(&self) -> PathBuf {
        self.dir.join("best.onnx")
    }

    /// The inference model of the current weights, as it will be written (the export hook applied), and its
    /// validation accuracy, in batches of the training batch (activation memory then stays within what the
    /// train step already takes; a fixed 256 cost 0.8 GB per activation at 224×224).
    pub(crate) fn validate(&self, sess: &dyn Stepper, val: &SampleSet, opts: &TrainOptions) -> Result<(Model, f64)> {
        let m = exported(sess, opts)?;
        let acc = accuracy(&m, val, &opts.runtime, opts.batch)?;
        Ok((m, acc))
    }

    /// `last.ckpt` always; `best.ckpt` and `best.onnx` when `best` (the validated model) is given; one metrics
    /// line.
    pub(crate) fn checkpoint(
        &mut self,
        sess: &dyn Stepper,
        header: &Header,
        best: Option<&Model>,
        identity: &RunIdentity,
        rec: &EpochRecord,
    ) -> Result<()> {
        let state = sess.read_state()?;
        checkpoint::save(&self.last_ckpt, header, &state)?;
        if let Some(m) = best {
            checkpoint::save(&self.dir.join("best.ckpt"), header, &state)?;
            save_model(m, &self.best_model_path(), identity, rec.val_acc, rec.epoch)?;
        }
        let d = &identity.data;
        writeln!(
            self.metrics,
            "{}",
            serde_json::json!({"kind": "epoch", "model_sha256": identity.model_sha256, "data_sha256": d.sha256,
                "preprocess": d.preprocess, "preset_fingerprint": d.preset_fingerprint,
                "seed": identity.seed,
                "ort_version": identity.provenance.ort_version, "device": identity.provenance.device,
                "record": rec})
        )?;
        Ok(())
    }

    /// The epoch's per-step curve, one `{"kind":"step", …}` line per point (`reports::schema::train::MetricsLine`).
    pub(crate) fn log_steps(&mut self, curve: &[reports::schema::train::StepRecord]) -> Result<()> {
        for r in curve {
            let line = reports::schema::train::MetricsLine::Step(r.clone());
            writeln!(self.metrics, "{}", serde_json::to_string(&line)?)?;
        }
        Ok(())
    }

    /// `model.onnx`: the final weights, exported.
    pub(crate) fn export(
        &self,
        sess: &dyn Stepper,
        opts: &TrainOptions,
        identity: &RunIdentity,
        val_acc: f64,
        epochs: u64,
    ) -> Result<()> {
        save_model(&exported(sess, opts)?, &self.model_path(), identity, val_acc, epochs)
    }
}

/// The session's inference model with the export hook applied.
fn exported(sess: &dyn Stepper, opts: &TrainOptions) -> Result<Model> {
    let m = sess.inference_model()?;
    match &opts.export {
        Some(hook) => hook(&m).context("applying the export hook to the trained model"),
        None => Ok(m),
    }
}

fn save_model(m: &Model, path: &Path, id: &RunIdentity, val_acc: f64, epochs: u64) -> Result<()> {
    let mut m = m.clone();
    m.set_metadata("ratio.finetune.source_sha256", id.model_sha256.clone());
    m.set_metadata("ratio.finetune.data_sha256", id.data.sha256.clone());
    m.set_metadata("ratio.finetune.preprocess", id.data.preprocess.clone());
    m.set_metadata("ratio.finetune.preset_fingerprint", id.data.preset_fingerprint.clone());
    m.set_metadata("ratio.finetune.epochs", epochs.to_string());
    m.set_metadata("ratio.finetune.seed", id.seed.to_string());
    m.set_metadata("ratio.finetune.val_acc", format!("{val_acc:.6}"));
    m.save(path, false)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
