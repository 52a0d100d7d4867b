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

/// Steps whose command line `--step-args` may extend: the per-variant steps plus `model` (`ratio model`, which
/// builds the random initialisation of a built-in architecture).
pub const ARG_STEPS: &[&str] = &["model", "convert", "train", "inspect", "eval", "bench", "richness"];

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

/// Input shape and classes per preprocessing preset (= data set name), for `ratio model` (others: pass
/// `--step-args "model=--channels C --input-size S --classes K"`).
pub fn data_shape(data: &str) -> Option<(u32, u32, u32)> {
    match data {
        "mnist" | "fashion-mnist" => Some((1, 28, 10)),
        "digits" => Some((1, 8, 10)),
        "cifar10" => Some((3, 32, 10)),
        "cifar100" => Some((3, 32, 100)),
        _ => None,
    }
}

/// `ratio model NAME` for a fresh random initialisation.
fn model_args(spec: &SweepSpec, name: &str, seed: u64, out: &Path) -> Vec<String> {
    let mut a = vec![
        "model".into(),
        name.to_string(),
        "-o".into(),
        s(out),
        "--seed".into(),
        seed.to_string(),
    ];
    if let Some((c, size, k)) = data_shape(&spec.preset) {
        a.extend([
            "--channels".into(),
            c.to_string(),
            "--input-size".into(),
            size.to_string(),
        ]);
        a.extend(["--classes".into(), k.to_string()]);
    }
    a.push("--force".into());
    with_extra(a, spec.step_args.get("model"))
}

/// `ratio finetune IN … -o DIR` (writes DIR/model.onnx): every training in a sweep starts from an ONNX file (a
/// fresh init or a converted model), so one command covers training from scratch and fine-tuning.
fn train_args(spec: &SweepSpec, input: &Path, seed: u64, out_dir: &Path) -> Vec<String> {
    let mut a = vec!["finetune".into(), s(input), "--data".into(), spec.data.clone()];
    a.extend([
        "--preset".into(),
        spec.preset.clone(),
        "--lr".into(),
        spec.lr.to_string(),
    ]);
    a.extend([
        "--epochs".into(),
        spec.epochs.to_string(),
        "--seed".into(),
        seed.to_string(),
    ]);
    a.extend(["-o".into(), s(out_dir), "--json".into(), "--no-progress".into()]);
    with_extra(a, spec.step_args.get("train"))
}

/// Append `--step-args`; a flag the plan already sets is replaced (with its value), so users can override any
/// planned setting, not only add new ones.
pub fn with_extra(mut args: Vec<String>, extra: Option<&Vec<String>>) -> Vec<String> {
    let Some(extra) = extra else { return args };
    let is_flag = |t: &str| {
        t.starts_with("--") || (t.starts_with('-') && t.len() == 2 && !t[1..].starts_with(|c: char| c.is_ascii_digit()))
    };
    for flag in extra.iter().filter(|t| is_flag(t)) {
        let name = flag.split('=').next().unwrap_or(flag);
        if let Some(i) = args
            .iter()
            .position(|a| a == name || a.starts_with(&format!("{name}=")))
        {
            let takes_value = !args[i].contains('=') && args.get(i + 1).is_some_and(|v| !is_flag(v));
            args.drain(i..i + 1 + usize::from(takes_value));
        }
    }
    args.extend(extra.iter().cloned());
    args
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
    let mut out = Vec::new();
    let shared =
        |key: &str, step: &str, args: Vec<String>, inputs: Vec<PathBuf>, output: PathBuf, deps: Vec<String>| StepPlan {
            key: key.into(),
            step: step.into(),
            variant: None,
            args,
            inputs,
            record: base_dir(run_dir).join(format!("{step}.json")),
            outputs: vec![output],
            deps,
        };

    // The 1:1 starting point every fine-tuned variant is converted from: (file, step that makes it).
    let base: Option<(PathBuf, Option<String>)> = match (&spec.model, spec.mode) {
        (ModelSource::File(p), _) => Some((p.clone(), None)),
        (ModelSource::Builtin(name), Mode::Finetune) => {
            let dir = base_dir(run_dir);
            let init = dir.join("init.onnx");
            out.push(shared(
                "base/model",
                "model",
                model_args(spec, name, 0, &init),
                vec![],
                init.clone(),
                vec![],
            ));
            if wants("train") {
                let model = dir.join("train").join("model.onnx");
                let args = train_args(spec, &init, 0, &dir.join("train"));
                out.push(shared(
                    "base/train",
                    "train",
                    args,
                    vec![init.clone()],
                    model.clone(),
                    vec!["base/model".into()],
                ));
                Some((model, Some("base/train".into())))
            } else {
                Some((init, Some("base/model".into())))
            }
        }
        (ModelSource::Builtin(_), Mode::FromScratch) => None,
    };

    for v in spec.variants() {
        let dir = variant_dir(run_dir, &v);
        let key = |step: &str| format!("{}/{step}", v.id);
        let mut steps: Vec<StepPlan> = Vec::new();
        let mut push =
            |step: &str, args: Vec<String>, inputs: Vec<PathBuf>, outputs: Vec<PathBuf>, deps: Vec<String>| {
                steps.push(StepPlan {
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
        // (current model, the step that made it)
        let mut cur: (PathBuf, Option<String>) = match (&base, &spec.model) {
            (Some(b), _) => b.clone(),
            (None, ModelSource::Builtin(name)) => {
                // From scratch: the variant's own random initialisation of the 1:1 network, converted below.
                let init = dir.join("init.onnx");
                push(
                    "model",
                    model_args(spec, name, v.seed, &init),
                    vec![],
                    vec![init.clone()],
                    vec![],
                );
                (init, Some(key("model")))
            }
            (None, ModelSource::File(_)) => unreachable!("a file is always the base"),
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
            let args = with_extra(args, spec.step_args.get("convert"));
            push("convert", args, vec![cur.0.clone()], vec![conv.clone()], deps_of(&cur));
            cur = (conv, Some(key("convert")));
        }
        if wants("train") {
            let trained = dir.join("train").join("model.onnx");
            push(
                "train",
                train_args(spec, &cur.0, v.seed, &dir.join("train")),
                vec![cur.0.clone()],
                vec![trained.clone()],
                deps_of(&cur),
            );
            cur = (trained, Some(key("train")));
        }
        if wants("inspect") {
            // Parameters, MACs and the ReLU count of the model the variant ends with.
            let args = vec!["inspect".into(), s(&cur.0), "--json".into()];
            let args = with_extra(args, spec.step_args.get("inspect"));
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
            let args = with_extra(args, spec.step_args.get("eval"));
            push("eval", args, vec![cur.0.clone()], vec![], deps_of(&cur));
        }
        if wants("bench") {
            let args = vec!["bench".into(), s(&cur.0), "--json".into()];
            let args = with_extra(args, spec.step_args.get("bench"));
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
            let args = with_extra(args, spec.step_args.get("richness"));
            push("richness", args, inputs, vec![], deps);
        }
        out.extend(steps);
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::Ratio;
    use std::collections::BTreeMap;

    fn spec(mode: Mode, steps: &[&str]) -> SweepSpec {
        SweepSpec {
            model: ModelSource::Builtin("resnet20".into()),
            data: "digits".into(),
            preset: "digits".into(),
            mode,
            ratios: vec![Ratio::ONE, Ratio { n: 2, m: 1 }],
            policies: vec!["last".into()],
            seeds: 1,
            epochs: 1,
            lr: 0.05,
            steps: steps.iter().map(|s| s.to_string()).collect(),
            step_args: BTreeMap::from([("model".to_string(), vec!["--width".to_string(), "0.25".to_string()])]),
        }
    }

    fn keys(p: &[StepPlan]) -> Vec<&str> {
        p.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn finetune_plan_trains_one_shared_base_then_each_variant() {
        let p = plan(&spec(Mode::Finetune, &["convert", "train", "eval"]), Path::new("/r")).unwrap();
        assert_eq!(
            keys(&p),
            [
                "base/model",
                "base/train",
                "r1-1_none_s0/convert",
                "r1-1_none_s0/train",
                "r1-1_none_s0/eval",
                "r2-1_last_s0/convert",
                "r2-1_last_s0/train",
                "r2-1_last_s0/eval"
            ]
        );
        assert_eq!(p[0].args[..4], ["model", "resnet20", "-o", "/r/base/init.onnx"]);
        assert!(
            p[0].args
                .ends_with(&["--force".into(), "--width".into(), "0.25".into()])
        );
        assert!(p[0].args.windows(2).any(|w| w == ["--input-size", "8"]));
        assert_eq!(p[2].inputs, [PathBuf::from("/r/base/train/model.onnx")]);
        assert_eq!(p[1].record, PathBuf::from("/r/base/train.json"));
        assert_eq!(p[2].deps, ["base/train"]);
        assert_eq!(p[7].deps, ["r2-1_last_s0/train"]);
        assert!(p[5].args.windows(2).any(|w| w == ["--keep", "last"]));
        assert!(!p[2].args.contains(&"--keep".to_string()), "1:1 has no policy");
    }

    #[test]
    fn from_scratch_plan_initialises_each_variant_with_its_seed() {
        let p = plan(&spec(Mode::FromScratch, &["convert", "train"]), Path::new("/r")).unwrap();
        assert_eq!(
            keys(&p)[..3],
            ["r1-1_none_s0/model", "r1-1_none_s0/convert", "r1-1_none_s0/train"]
        );
        assert!(p.iter().all(|s| s.variant.is_some()));
    }

    #[test]
    fn every_planned_command_parses_with_the_cli_or_is_named() {
        // convert, inspect and model exist in this build; the check names any step that does not.
        let p = plan(&spec(Mode::Finetune, &["convert", "inspect"]), Path::new("/r")).unwrap();
        check_against_cli(&p).unwrap();
        let p = plan(&spec(Mode::Finetune, &["convert", "train"]), Path::new("/r")).unwrap();
        if let Err(e) = check_against_cli(&p) {
            assert!(e.to_string().contains("step \"train\""), "{e}");
        }
    }
}

#[cfg(test)]
mod extra_tests {
    use super::with_extra;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn step_args_replace_planned_flags_and_append_new_ones() {
        let planned = v(&["finetune", "m.onnx", "--lr", "0.05", "--json", "-o", "d"]);
        let out = with_extra(
            planned.clone(),
            Some(&v(&["--lr", "0.01", "--train-limit", "500", "--json"])),
        );
        assert_eq!(
            out,
            v(&[
                "finetune",
                "m.onnx",
                "-o",
                "d",
                "--lr",
                "0.01",
                "--train-limit",
                "500",
                "--json"
            ])
        );
        let out = with_extra(planned.clone(), Some(&v(&["--lr=-0.1"])));
        assert_eq!(out, v(&["finetune", "m.onnx", "--json", "-o", "d", "--lr=-0.1"]));
        assert_eq!(with_extra(planned.clone(), None), planned);
    }
}
