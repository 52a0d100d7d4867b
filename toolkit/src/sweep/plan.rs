//! Turn a [`SweepSpec`] into concrete child command lines: which `ratio` subcommand each step runs, on which
//! files, writing which files. Every command line is parsed with this binary's own clap definition before
//! anything runs, so a step this build lacks (or a flag it does not take) fails the plan, not the fifth hour.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Parser;
use reports::schema::sweep::Variant;

use super::spec::{Mode, ModelSource, SweepSpec};

/// Steps a variant can run, in pipeline order.
pub const STEPS: &[&str] = &["convert", "train", "inspect", "eval", "bench", "richness"];

/// One child process to run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    /// Unique within the run dir: `base/train`, `r2-1_last_s0/eval`.
    pub key: String,
    pub step: String,
    pub variant: Option<Variant>,
    /// Arguments after the program name.
    pub args: Vec<String>,
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<PathBuf>,
    /// Where the step's record goes.
    pub record: PathBuf,
    /// Keys of steps that must have succeeded first.
    pub deps: Vec<String>,
}

impl StepPlan {
    /// The child's stderr, kept whole next to the record for post-mortems.
    pub fn log_path(&self) -> PathBuf {
        self.record.with_extension("log")
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub fn base_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("base")
}

pub fn variant_dir(run_dir: &Path, v: &Variant) -> PathBuf {
    run_dir.join("variants").join(&v.id)
}

/// Plan for the whole grid, in execution order (shared steps first). `run_dir` should be absolute so the
/// recorded command lines work from any directory (Slurm tasks).
pub fn plan(spec: &SweepSpec, run_dir: &Path) -> Result<Vec<StepPlan>> {
    for st in &spec.steps {
        if !STEPS.contains(&st.as_str()) {
            bail!("step {st:?} is not one of {}", STEPS.join(", "));
        }
    }
    let wants = |name: &str| spec.steps.iter().any(|s| s == name);
    let extra = |name: &str| spec.step_args.get(name).cloned().unwrap_or_default();
    let mut out = Vec::new();

    // The 1:1 starting point every fine-tuned variant is converted from.
    let base: Option<(PathBuf, Option<String>)> = match (&spec.model, spec.mode) {
        (ModelSource::File(p), _) => Some((p.clone(), None)),
        (ModelSource::Builtin(name), Mode::Finetune) => {
            let dir = base_dir(run_dir);
            let model = dir.join("model.onnx");
            let mut args = vec![
                "train".into(),
                "--model".into(),
                name.clone(),
                "--data".into(),
                spec.data.clone(),
            ];
            args.extend(["--epochs".into(), spec.epochs.to_string(), "--seed".into(), "0".into()]);
            args.extend(["-o".into(), s(&model), "--json".into()]);
            args.extend(extra("train"));
            out.push(StepPlan {
                key: "base/train".into(),
                step: "train".into(),
                variant: None,
                args,
                inputs: vec![],
                outputs: vec![model.clone()],
                record: dir.join("train.json"),
                deps: vec![],
            });
            Some((model, Some("base/train".into())))
        }
        (ModelSource::Builtin(_), Mode::FromScratch) => None,
    };

    for v in spec.variants() {
        let dir = variant_dir(run_dir, &v);
        let key = |step: &str| format!("{}/{step}", v.id);
        // (current model, the step that made it)
        let mut cur: (PathBuf, Option<String>) = match &base {
            Some(b) => b.clone(),
            None => {
                // From scratch: the variant's own random initialisation (an untrained 1:1 network).
                let ModelSource::Builtin(name) = &spec.model else {
                    unreachable!("validated")
                };
                let init = dir.join("init.onnx");
                let args = vec![
                    "train".into(),
                    "--model".into(),
                    name.clone(),
                    "--data".into(),
                    spec.data.clone(),
                    "--epochs".into(),
                    "0".into(),
                    "--seed".into(),
                    v.seed.to_string(),
                    "-o".into(),
                    s(&init),
                    "--json".into(),
                ];
                out_push_init(&mut out, &v, &dir, args, init.clone());
                (init, Some(key("init")))
            }
        };
        let mut push =
            |step: &str, args: Vec<String>, inputs: Vec<PathBuf>, outputs: Vec<PathBuf>, deps: Vec<String>| {
                let mut args = args;
                args.extend(extra(step));
                out.push(StepPlan {
                    key: key(step),
                    step: step.to_string(),
                    variant: Some(v.clone()),
                    args,
                    inputs,
                    outputs,
                    record: dir.join(format!("{step}.json")),
                    deps,
                });
            };
        let deps_of = |c: &(PathBuf, Option<String>)| c.1.iter().cloned().collect::<Vec<_>>();
        if wants("convert") {
            let conv = dir.join("converted.onnx");
            let mut args = vec!["convert".into(), s(&cur.0), "--ratio".into(), v.ratio.clone()];
            if v.policy != "none" {
                args.extend(["--keep".into(), v.policy.clone()]);
            }
            args.extend([
                "--seed".into(),
                v.seed.to_string(),
                "-o".into(),
                s(&conv),
                "--force".into(),
                "--json".into(),
            ]);
            push("convert", args, vec![cur.0.clone()], vec![conv.clone()], deps_of(&cur));
            cur = (conv, Some(key("convert")));
        }
        if wants("train") {
            let trained = dir.join("model.onnx");
            let mut args = vec!["finetune".into(), s(&cur.0), "--data".into(), spec.data.clone()];
            args.extend([
                "--epochs".into(),
                spec.epochs.to_string(),
                "--seed".into(),
                v.seed.to_string(),
            ]);
            args.extend(["-o".into(), s(&trained), "--json".into()]);
            push("train", args, vec![cur.0.clone()], vec![trained.clone()], deps_of(&cur));
            cur = (trained, Some(key("train")));
        }
        if wants("inspect") {
            // Parameters, MACs and the ReLU count of the model the variant ends with.
            let args = vec!["inspect".into(), s(&cur.0), "--json".into()];
            push("inspect", args, vec![cur.0.clone()], vec![], deps_of(&cur));
        }
        if wants("eval") {
            let mut args = vec!["eval".into(), s(&cur.0), "--data".into(), spec.data.clone()];
            args.extend([
                "--preset".into(),
                spec.preset.clone(),
                "--seed".into(),
                v.seed.to_string(),
                "--json".into(),
            ]);
            push("eval", args, vec![cur.0.clone()], vec![], deps_of(&cur));
        }
        if wants("bench") {
            let args = vec!["bench".into(), s(&cur.0), "--json".into()];
            push("bench", args, vec![cur.0.clone()], vec![], deps_of(&cur));
        }
        if wants("richness") {
            let mut args = vec!["richness".into()];
            let mut inputs = vec![];
            let mut deps = deps_of(&cur);
            // CKA against the shared 1:1 model (listed first: `ratio richness` compares the first model with the
            // others) shows what conversion + fine-tuning changed in the representation.
            if let Some((b, bdep)) = &base {
                args.push(s(b));
                inputs.push(b.clone());
                deps.extend(bdep.iter().cloned());
            }
            args.push(s(&cur.0));
            inputs.push(cur.0.clone());
            args.extend([
                "--data".into(),
                spec.data.clone(),
                "--preset".into(),
                spec.preset.clone(),
            ]);
            args.extend(["--seed".into(), v.seed.to_string(), "--json".into(), "-".into()]);
            push("richness", args, inputs, vec![], deps);
        }
    }
    Ok(out)
}

fn out_push_init(out: &mut Vec<StepPlan>, v: &Variant, dir: &Path, args: Vec<String>, init: PathBuf) {
    out.push(StepPlan {
        key: format!("{}/init", v.id),
        step: "init".into(),
        variant: Some(v.clone()),
        args,
        inputs: vec![],
        outputs: vec![init],
        record: dir.join("init.json"),
        deps: vec![],
    });
}

/// Parse every planned command line with this binary's clap definition.
pub fn check_against_cli(plans: &[StepPlan]) -> Result<()> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in plans {
        // One report per step kind is enough: the variants differ only in values.
        if !seen.insert(p.step.clone()) {
            continue;
        }
        let argv = std::iter::once("ratio".to_string()).chain(p.args.iter().cloned());
        if let Err(e) = crate::cli::Cli::try_parse_from(argv) {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            problems.push(format!(
                "step {:?}: `ratio {}` is not accepted by this build: {first}",
                p.step,
                p.args.join(" ")
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the sweep plan uses commands this build of ratio does not provide (choose steps with --steps, adjust \
             flags with --step-args STEP='...'):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}
