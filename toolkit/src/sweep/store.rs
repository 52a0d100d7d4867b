//! Reading and trusting records in a run directory: the manifest that pins a sweep, and per-step records that
//! are reused only when their recorded output hashes still match the files on disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use converters::ir::model::{sha256_file, write_atomic};
use reports::schema::sweep::{StepStatus, SweepManifest, SweepStep};
use reports::schema::{FileRef, Record};

use super::plan::StepPlan;

pub const MANIFEST: &str = "manifest.json";

/// What a step's record says about whether it must run.
#[derive(Debug)]
pub enum StepState {
    /// Finished and every recorded output still has its recorded hash.
    Done(Box<Record>),
    /// No record: never ran, or the run was interrupted during the step.
    Missing,
    /// The record says the step failed.
    Failed(Box<Record>),
    /// The record cannot be read or does not fit the plan; the reason is reported and the step redone.
    Corrupt(String),
    /// A readable, successful record whose files no longer match it.
    Stale(String),
}

/// Path as stored in records: relative to the run dir when inside it, so a run dir can be moved or merged.
pub fn rel(run_dir: &Path, p: &Path) -> String {
    p.strip_prefix(run_dir).unwrap_or(p).to_string_lossy().into_owned()
}

pub fn resolve(run_dir: &Path, stored: &str) -> PathBuf {
    let p = Path::new(stored);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        run_dir.join(p)
    }
}

pub fn file_ref(run_dir: &Path, p: &Path) -> Result<FileRef> {
    Ok(FileRef {
        path: rel(run_dir, p),
        sha256: sha256_file(p)?,
    })
}

/// Judge one step's record against the plan and the files on disk.
pub fn check_step(run_dir: &Path, plan: &StepPlan) -> StepState {
    let text = match std::fs::read_to_string(&plan.record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return StepState::Missing,
        Err(e) => return StepState::Corrupt(format!("{}: cannot read: {e}", plan.record.display())),
    };
    let rec = match Record::from_json(&text) {
        Ok(r) => r,
        Err(e) => return StepState::Corrupt(format!("{}: {e}", plan.record.display())),
    };
    let body: SweepStep = match rec.body_as() {
        Ok(b) => b,
        Err(e) => return StepState::Corrupt(format!("{}: {e}", plan.record.display())),
    };
    if body.key != plan.key {
        return StepState::Corrupt(format!(
            "{}: holds step {:?}, expected {:?}",
            plan.record.display(),
            body.key,
            plan.key
        ));
    }
    if body.status == StepStatus::Failed {
        return StepState::Failed(Box::new(rec));
    }
    let expected: Vec<String> = plan.outputs.iter().map(|p| rel(run_dir, p)).collect();
    let recorded: Vec<&str> = rec.outputs.iter().map(|f| f.path.as_str()).collect();
    if recorded != expected {
        return StepState::Corrupt(format!(
            "{}: records outputs {recorded:?}, the plan expects {expected:?}",
            plan.record.display()
        ));
    }
    for f in rec.outputs.iter().chain(&rec.inputs) {
        let path = resolve(run_dir, &f.path);
        match sha256_file(&path) {
            Ok(h) if h == f.sha256 => {}
            Ok(_) => return StepState::Stale(format!("{} changed since the step ran", path.display())),
            Err(_) => return StepState::Stale(format!("{} is missing", path.display())),
        }
    }
    StepState::Done(Box::new(rec))
}

/// Create the run directory with its manifest, or check that an existing one belongs to this very sweep.
pub fn open_run_dir(run_dir: &Path, manifest: &Record) -> Result<()> {
    let want: SweepManifest = manifest.body_as()?;
    let path = run_dir.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let rec = Record::from_json(&text).with_context(|| {
                format!(
                    "{}: the run directory's manifest is unreadable; refusing to mix runs (use a new --run-dir)",
                    path.display()
                )
            })?;
            let have: SweepManifest = rec
                .body_as()
                .with_context(|| format!("{}: not a sweep manifest", path.display()))?;
            if have.sweep_hash != want.sweep_hash {
                let diff = diff_settings(&have.settings, &want.settings);
                bail!(
                    "{} belongs to a different sweep (hash {} ≠ {}); differing settings: {}. Use another --run-dir, \
                     or rerun with the original command to resume",
                    run_dir.display(),
                    &have.sweep_hash[..12.min(have.sweep_hash.len())],
                    &want.sweep_hash[..12.min(want.sweep_hash.len())],
                    if diff.is_empty() {
                        "(unknown)".into()
                    } else {
                        diff.join(", ")
                    }
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if run_dir.is_dir()
                && std::fs::read_dir(run_dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                bail!(
                    "{} exists, is not empty and has no {MANIFEST}: not a sweep run directory; refusing to write into it",
                    run_dir.display()
                );
            }
            std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
            write_atomic(&path, manifest.to_json_pretty().as_bytes())?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn diff_settings(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "{k}: {} → {}",
                        a.get(k).map_or("-".into(), |v| v.to_string()),
                        b.get(k).map_or("-".into(), |v| v.to_string())
                    )
                })
                .collect()
        }
        _ => vec![],
    }
}

/// The manifest record of `spec`: what the sweep is, its hash, its grid; the model file pinned when one is given.
pub fn manifest_record(spec: &super::spec::SweepSpec, run_dir: &Path) -> Result<Record> {
    let m = SweepManifest {
        sweep_hash: spec.hash(),
        model: spec.model.label(),
        data: spec.data.clone(),
        mode: spec.mode.as_str().into(),
        ratios: spec.ratios.iter().map(ToString::to_string).collect(),
        policies: spec.policies.clone(),
        seeds: spec.seeds,
        settings: serde_json::to_value(spec)?,
        steps: spec.steps.clone(),
        variants: spec.variants(),
    };
    let mut rec = Record::new(
        &m,
        std::env::args().collect(),
        super::provenance::current(),
        reports::schema::now_rfc3339(),
    )?;
    if let super::spec::ModelSource::File(p) = &spec.model {
        rec.inputs.push(file_ref(run_dir, p)?);
    }
    Ok(rec)
}

/// Read the manifest of a run dir (for `ratio report`).
pub fn read_manifest(run_dir: &Path) -> Result<(Record, SweepManifest)> {
    let path = run_dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: no sweep manifest (is this a `ratio sweep` run directory?)",
            path.display()
        )
    })?;
    let rec = Record::from_json(&text).with_context(|| format!("{}: unreadable manifest", path.display()))?;
    let m = rec
        .body_as()
        .with_context(|| format!("{}: not a sweep manifest", path.display()))?;
    Ok((rec, m))
}
