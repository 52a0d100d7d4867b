//! Turn a [`SweepSpec`] into concrete child command lines: which `ratio` subcommand each step runs, on which
//! files, writing which files. Every command line is parsed with this binary's own clap definition before
//! anything runs, so a step this build lacks (or a flag it does not take) fails the plan, not the fifth hour.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Parser;
use reports::schema::sweep::Variant;

use super::spec::{Mode, ModelSource, SweepSpec};

/// Steps a variant can run, in pipeline order. `calibrate` is opt-in (`--steps convert,calibrate,train,…`): it
/// refits the converted model to the source's activations before fine-tuning.
pub const STEPS: &[&str] = &["convert", "calibrate", "train", "inspect", "eval", "bench", "richness"];

/// Steps whose command line `--step-args` may extend: the per-variant steps plus `model` (`ratio model`, which
/// builds the random initialisation of a built-in architecture).
pub const ARG_STEPS: &[&str] = &[
    "model",
    "convert",
    "calibrate",
    "train",
    "inspect",
    "eval",
    "bench",
    "richness",
];

/// Calibration samples the sweep asks for (override with `--step-args "calibrate=--samples N"`).
pub const CALIBRATE_SAMPLES: usize = 2000;

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
    a.extend([
        "-o".into(),
        s(out_dir),
        "--json".into(),
        "-".into(),
        "--no-progress".into(),
    ]);
    a
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

/// A model file and the step that makes it (`None`: it exists before the sweep).
type Made = (PathBuf, Option<String>);

fn deps_of(m: &Made) -> Vec<String> {
    m.1.iter().cloned().collect()
}

/// Plan for the whole grid, in execution order (shared steps first). `run_dir` should be absolute so the
/// recorded command lines work from any directory (Slurm tasks).
pub fn plan(spec: &SweepSpec, run_dir: &Path) -> Result<Vec<StepPlan>> {
    for st in &spec.steps {
        if !STEPS.contains(&st.as_str()) {
            bail!("step {st:?} is not one of {}", STEPS.join(", "));
        }
    }
    if spec.steps.iter().any(|s| s == "calibrate") && !spec.steps.iter().any(|s| s == "convert") {
        bail!("step \"calibrate\" refits a converted model: --steps needs convert too");
    }
    let mut out = Vec::new();
    let base = base_steps(spec, run_dir, &mut out);
    for v in spec.variants() {
        out.extend(VariantPlan::new(spec, run_dir, &v, base.as_ref()).steps());
    }
    Ok(out)
}

/// The 1:1 starting point every fine-tuned variant is converted from, and the shared steps that make it: the
/// given file, or a built-in architecture initialised (and trained when `train` is a step). `None` from scratch.
fn base_steps(spec: &SweepSpec, run_dir: &Path, out: &mut Vec<StepPlan>) -> Option<Made> {
    let shared =
        |key: &str, step: &str, args: Vec<String>, inputs: Vec<PathBuf>, outputs: Vec<PathBuf>, deps| StepPlan {
            key: key.into(),
            step: step.into(),
            variant: None,
            args,
            inputs,
            record: base_dir(run_dir).join(format!("{step}.json")),
            outputs,
            deps,
        };
    let name = match (&spec.model, spec.mode) {
        (ModelSource::File(p), _) => return Some((p.clone(), None)),
        (ModelSource::Builtin(_), Mode::FromScratch) => return None,
        (ModelSource::Builtin(name), Mode::Finetune) => name,
    };
    let dir = base_dir(run_dir);
    let init = dir.join("init.onnx");
    out.push(shared(
        "base/model",
        "model",
        model_args(spec, name, 0, &init),
        vec![],
        vec![init.clone()],
        vec![],
    ));
    if !spec.steps.iter().any(|s| s == "train") {
        return Some((init, Some("base/model".into())));
    }
    let train_dir = dir.join("train");
    out.push(shared(
        "base/train",
        "train",
        with_extra(train_args(spec, &init, 0, &train_dir), spec.step_args.get("train")),
        vec![init.clone()],
        train_outputs(&train_dir),
        vec!["base/model".into()],
    ));
    Some((train_dir.join("model.onnx"), Some("base/train".into())))
}

/// `finetune -o DIR` writes the inference model and the metrics log there (both hash-pinned in the record).
fn train_outputs(dir: &Path) -> Vec<PathBuf> {
    vec![dir.join("model.onnx"), dir.join("metrics.jsonl")]
}

/// One variant's pipeline: each step reads the model the previous one made.
struct VariantPlan<'a> {
    spec: &'a SweepSpec,
    v: &'a Variant,
    dir: PathBuf,
    base: Option<&'a Made>,
    /// The 1:1 model of the same architecture that latency is paired against: the shared base, or (from scratch)
    /// the variant's own initialisation before conversion.
    reference: Option<Made>,
    /// The model the next step reads.
    cur: Made,
    steps: Vec<StepPlan>,
}

impl<'a> VariantPlan<'a> {
    fn new(spec: &'a SweepSpec, run_dir: &Path, v: &'a Variant, base: Option<&'a Made>) -> Self {
        let mut p = VariantPlan {
            spec,
            v,
            dir: variant_dir(run_dir, v),
            base,
            reference: base.cloned(),
            cur: (PathBuf::new(), None),
            steps: Vec::new(),
        };
        p.cur = match (base, &spec.model) {
            (Some(b), _) => b.clone(),
            (None, ModelSource::Builtin(name)) => {
                // From scratch: the variant's own random initialisation of the 1:1 network, converted below.
                let init = p.dir.join("init.onnx");
                let args = model_args(spec, name, v.seed, &init);
                p.push("model", args, vec![], vec![init.clone()], vec![]);
                let made = (init, Some(p.key("model")));
                p.reference = Some(made.clone());
                made
            }
            (None, ModelSource::File(_)) => unreachable!("a file is always the base"),
        };
        p
    }

    fn key(&self, step: &str) -> String {
        format!("{}/{step}", self.v.id)
    }

    fn wants(&self, step: &str) -> bool {
        self.spec.steps.iter().any(|s| s == step)
    }

    fn push(&mut self, step: &str, args: Vec<String>, inputs: Vec<PathBuf>, outputs: Vec<PathBuf>, deps: Vec<String>) {
        let args = if step == "model" {
            args
        } else {
            with_extra(args, self.spec.step_args.get(step))
        };
        self.steps.push(StepPlan {
            key: self.key(step),
            step: step.to_string(),
            variant: Some(self.v.clone()),
            args,
            inputs,
            outputs,
            record: self.dir.join(format!("{step}.json")),
            deps,
        });
    }

    /// Push a step that writes the model the later steps read.
    fn push_model_step(
        &mut self,
        step: &str,
        args: Vec<String>,
        inputs: Vec<PathBuf>,
        outputs: Vec<PathBuf>,
        made: PathBuf,
    ) {
        let deps = deps_of(&self.cur);
        self.push(step, args, inputs, outputs, deps);
        self.cur = (made, Some(self.key(step)));
    }

    fn steps(mut self) -> Vec<StepPlan> {
        for step in STEPS {
            if self.wants(step) {
                match *step {
                    "convert" => self.convert(),
                    "calibrate" => self.calibrate(),
                    "train" => self.train(),
                    "inspect" => self.inspect(),
                    "eval" => self.eval(),
                    "bench" => self.bench(),
                    _ => self.richness(),
                }
            }
        }
        self.steps
    }

    fn convert(&mut self) {
        let conv = self.dir.join("converted.onnx");
        let src = self.cur.0.clone();
        let mut args = vec!["convert".into(), s(&src), "--ratio".into(), self.v.ratio.clone()];
        if self.v.policy != "none" {
            args.extend(["--keep".into(), self.v.policy.clone()]);
        }
        args.extend([
            "--seed".into(),
            self.v.seed.to_string(),
            "-o".into(),
            s(&conv),
            "--force".into(),
            "--json".into(),
            "-".into(),
        ]);
        self.push_model_step("convert", args, vec![src], vec![conv.clone()], conv);
    }

    /// `ratio calibrate CONVERTED --reference SOURCE …`: refit the layers after removed activations to reproduce
    /// the source model's tensors, before any gradient step.
    fn calibrate(&mut self) {
        let source = self
            .base
            .map(|b| b.0.clone())
            .or_else(|| self.reference.as_ref().map(|r| r.0.clone()));
        let (Some(source), conv) = (source, self.cur.0.clone()) else {
            return;
        };
        let out = self.dir.join("calibrated.onnx");
        let sp = self.spec;
        let mut args = vec!["calibrate".into(), s(&conv), "--data".into(), sp.data.clone()];
        args.extend(["--preset".into(), sp.preset.clone(), "--reference".into(), s(&source)]);
        args.extend([
            "--samples".into(),
            CALIBRATE_SAMPLES.to_string(),
            "--method".into(),
            "auto".into(),
        ]);
        args.extend(["-o".into(), s(&out), "--force".into(), "--json".into(), "-".into()]);
        self.push_model_step("calibrate", args, vec![conv, source], vec![out.clone()], out);
    }

    fn train(&mut self) {
        // finetune's -o names a folder; the trained inference model is DIR/train/model.onnx.
        let train_dir = self.dir.join("train");
        let src = self.cur.0.clone();
        let args = train_args(self.spec, &src, self.v.seed, &train_dir);
        self.push_model_step(
            "train",
            args,
            vec![src],
            train_outputs(&train_dir),
            train_dir.join("model.onnx"),
        );
    }

    /// Parameters, MACs and the ReLU count of the model the variant ends with.
    fn inspect(&mut self) {
        let args = vec!["inspect".into(), s(&self.cur.0), "--json".into(), "-".into()];
        self.push("inspect", args, vec![self.cur.0.clone()], vec![], deps_of(&self.cur));
    }

    /// Per-sample predictions, so the summary can pair the variant with 1:1 sample by sample.
    fn eval(&mut self) {
        let sp = self.spec;
        let mut args = vec!["eval".into(), s(&self.cur.0), "--data".into(), sp.data.clone()];
        args.extend([
            "--preset".into(),
            sp.preset.clone(),
            "--seed".into(),
            self.v.seed.to_string(),
        ]);
        args.extend([
            "--per-sample".into(),
            "--json".into(),
            "-".into(),
            "--no-progress".into(),
        ]);
        self.push("eval", args, vec![self.cur.0.clone()], vec![], deps_of(&self.cur));
    }

    /// The 1:1 reference and the variant in one interleaved loop (A, B, A, B) with an explicit batch × thread
    /// group: the per-iteration ratio cancels drift, which separate runs per variant cannot.
    fn bench(&mut self) {
        let mut args = vec!["bench".into()];
        let mut inputs = vec![];
        let mut deps = deps_of(&self.cur);
        if let Some((r, rdep)) = &self.reference {
            args.push(s(r));
            inputs.push(r.clone());
            deps.extend(rdep.iter().cloned());
        }
        args.push(s(&self.cur.0));
        inputs.push(self.cur.0.clone());
        args.extend(["--batch".into(), "1".into(), "--threads".into(), "1".into()]);
        args.extend(["--seed".into(), self.v.seed.to_string(), "--json".into(), "-".into()]);
        dedup(&mut deps);
        self.push("bench", args, inputs, vec![], deps);
    }

    fn richness(&mut self) {
        let mut args = vec!["richness".into()];
        let mut inputs = vec![];
        let mut deps = deps_of(&self.cur);
        // CKA against the shared 1:1 model (listed first: `ratio richness` compares the first model with the
        // others) shows what conversion + fine-tuning changed in the representation.
        if let Some((b, bdep)) = self.base {
            args.push(s(b));
            inputs.push(b.clone());
            deps.extend(bdep.iter().cloned());
        }
        args.push(s(&self.cur.0));
        inputs.push(self.cur.0.clone());
        let sp = self.spec;
        args.extend(["--data".into(), sp.data.clone(), "--preset".into(), sp.preset.clone()]);
        args.extend(["--seed".into(), self.v.seed.to_string(), "--json".into(), "-".into()]);
        dedup(&mut deps);
        self.push("richness", args, inputs, vec![], deps);
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
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
        // Every default step exists in this build: each planned command line must parse, in both modes.
        let all = ["convert", "train", "inspect", "eval", "bench", "richness"];
        for mode in [Mode::Finetune, Mode::FromScratch] {
            let p = plan(&spec(mode, &all), Path::new("/r")).unwrap();
            check_against_cli(&p).unwrap();
        }
        // A flag a command does not take fails the plan, naming the step and the flag.
        let mut bad = spec(Mode::Finetune, &all);
        bad.step_args.insert("eval".into(), vec!["--no-such-flag".into()]);
        let e = check_against_cli(&plan(&bad, Path::new("/r")).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("step \"eval\"") && e.contains("--no-such-flag"), "{e}");
        assert!(!e.contains("step \"train\""), "only the broken step is named: {e}");
    }

    #[test]
    fn steps_pair_what_the_summary_compares() {
        let p = plan(
            &spec(Mode::Finetune, &["convert", "train", "eval", "bench"]),
            Path::new("/r"),
        )
        .unwrap();
        let find = |k: &str| p.iter().find(|s| s.key == k).unwrap();
        // Training pins its metrics log (the per-step curves) as an output.
        assert_eq!(
            find("r2-1_last_s0/train").outputs,
            [
                PathBuf::from("/r/variants/r2-1_last_s0/train/model.onnx"),
                PathBuf::from("/r/variants/r2-1_last_s0/train/metrics.jsonl")
            ]
        );
        assert!(find("r2-1_last_s0/eval").args.contains(&"--per-sample".to_string()));
        // Bench interleaves the shared 1:1 model with the variant, in one explicit batch × thread group.
        let b = find("r2-1_last_s0/bench");
        assert_eq!(
            b.args[..3],
            [
                "bench",
                "/r/base/train/model.onnx",
                "/r/variants/r2-1_last_s0/train/model.onnx"
            ]
        );
        assert!(b.args.windows(2).any(|w| w == ["--batch", "1"]) && b.args.windows(2).any(|w| w == ["--threads", "1"]));
        assert_eq!(b.deps, ["r2-1_last_s0/train", "base/train"]);
        // From scratch, the reference is the variant's own 1:1 initialisation.
        let p = plan(&spec(Mode::FromScratch, &["convert", "bench"]), Path::new("/r")).unwrap();
        let b = p.iter().find(|s| s.key == "r2-1_last_s0/bench").unwrap();
        assert_eq!(b.args[1], "/r/variants/r2-1_last_s0/init.onnx");
        assert_eq!(b.deps, ["r2-1_last_s0/convert", "r2-1_last_s0/model"]);
    }

    #[test]
    fn calibrate_sits_between_convert_and_training_and_needs_convert() {
        let p = plan(
            &spec(Mode::Finetune, &["convert", "calibrate", "train"]),
            Path::new("/r"),
        )
        .unwrap();
        let keys = keys(&p);
        assert_eq!(
            keys[5..8],
            ["r2-1_last_s0/convert", "r2-1_last_s0/calibrate", "r2-1_last_s0/train"]
        );
        let c = &p[6];
        assert_eq!(
            c.args[..2],
            [
                "calibrate".to_string(),
                "/r/variants/r2-1_last_s0/converted.onnx".to_string()
            ]
        );
        assert!(
            c.args
                .windows(2)
                .any(|w| w == ["--reference", "/r/base/train/model.onnx"])
        );
        assert!(c.args.windows(2).any(|w| w == ["--json", "-"]));
        assert_eq!(c.outputs, [PathBuf::from("/r/variants/r2-1_last_s0/calibrated.onnx")]);
        assert_eq!(c.deps, ["r2-1_last_s0/convert"]);
        assert_eq!(p[7].inputs, c.outputs, "fine-tuning starts from the calibrated model");
        let e = plan(&spec(Mode::Finetune, &["calibrate", "train"]), Path::new("/r")).unwrap_err();
        assert!(e.to_string().contains("needs convert"), "{e}");
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
