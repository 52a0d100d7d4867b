//! What a sweep is: the validated grid and settings, its variants, and the hash that identifies it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use reports::schema::sweep::Variant;
use serde::{Deserialize, Serialize};

/// Built-in architectures `ratio train --model` knows.
pub const BUILTIN_MODELS: &[&str] = &["resnet20", "vgg", "densenet", "plain"];

/// Placement policies `ratio convert --keep` knows.
pub const POLICIES: &[&str] = &["first", "last", "spread", "random"];

/// `N:M`, the converter's own type (1:1 is the baseline).
pub use converters::policy::Ratio;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Convert a trained 1:1 model, then fine-tune each variant (the deployable path).
    Finetune,
    /// Train each converted architecture from its random initialisation (the paper's setting).
    FromScratch,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Finetune => "finetune",
            Mode::FromScratch => "from-scratch",
        }
    }
}

/// Where the 1:1 model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum ModelSource {
    Builtin(String),
    File(PathBuf),
}

impl ModelSource {
    pub fn parse(s: &str) -> Result<Self> {
        if BUILTIN_MODELS.contains(&s) {
            return Ok(ModelSource::Builtin(s.to_string()));
        }
        let p = PathBuf::from(s);
        if p.extension().is_some_and(|e| e == "onnx") || p.exists() {
            if !p.is_file() {
                bail!(
                    "model {s:?}: no such file (built-in models: {})",
                    BUILTIN_MODELS.join(", ")
                );
            }
            // Absolute, so shard tasks started elsewhere (Slurm) find the same file.
            let abs = std::fs::canonicalize(&p).with_context(|| format!("resolving model path {s:?}"))?;
            return Ok(ModelSource::File(abs));
        }
        bail!(
            "model {s:?} is neither a built-in model ({}) nor an .onnx file",
            BUILTIN_MODELS.join(", ")
        )
    }

    pub fn label(&self) -> String {
        match self {
            ModelSource::Builtin(n) => n.clone(),
            ModelSource::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// Everything that decides a sweep's results. Scheduling (shards, run dir, emit) is deliberately not here, so
/// every shard of one sweep has the same hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    pub model: ModelSource,
    pub data: String,
    /// Preprocessing preset for eval/richness (defaults to the data set's own name).
    pub preset: String,
    pub mode: Mode,
    pub ratios: Vec<Ratio>,
    pub policies: Vec<String>,
    pub seeds: u64,
    pub epochs: u32,
    /// Learning rate of every training step.
    pub lr: f64,
    /// Steps to run per variant, in pipeline order.
    pub steps: Vec<String>,
    /// Extra arguments appended to a step's command line, keyed by step name (flags the sweep does not model).
    pub step_args: BTreeMap<String, Vec<String>>,
}

impl SweepSpec {
    /// Check the grid; 1:1 must be present because every comparison is against it.
    pub fn validate(&self) -> Result<()> {
        if !self.ratios.contains(&Ratio::ONE) {
            bail!("--ratios must include 1:1, the baseline every variant is compared with");
        }
        for p in &self.policies {
            if !POLICIES.contains(&p.as_str()) {
                bail!("policy {p:?} is not one of {}", POLICIES.join(", "));
            }
        }
        if self.policies.is_empty() {
            bail!("--policies is empty");
        }
        if self.seeds == 0 {
            bail!("--seeds must be at least 1");
        }
        if self.mode == Mode::FromScratch && matches!(self.model, ModelSource::File(_)) {
            bail!(
                "--from-scratch needs a built-in architecture (--model {}); a file is a trained checkpoint",
                BUILTIN_MODELS.join("|")
            );
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.ratios {
            if !seen.insert(r) {
                bail!("ratio {r} is listed twice");
            }
        }
        Ok(())
    }

    /// The grid. Policy is meaningless at 1:1 (nothing is removed), so the baseline appears once per seed under
    /// the policy name `none`.
    pub fn variants(&self) -> Vec<Variant> {
        let mut out = Vec::new();
        for r in &self.ratios {
            let policies: Vec<&str> = if r.is_identity() {
                vec!["none"]
            } else {
                self.policies.iter().map(String::as_str).collect()
            };
            for p in policies {
                for seed in 0..self.seeds {
                    out.push(Variant {
                        id: format!("r{}-{}_{p}_s{seed}", r.n, r.m),
                        ratio: r.to_string(),
                        policy: p.to_string(),
                        seed,
                    });
                }
            }
        }
        out
    }

    /// sha256 over the canonical JSON of this spec (struct field order and BTreeMap keys are fixed).
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        converters::ir::model::sha256_hex(&json)
    }
}

/// `a, b,,c` → `[a, b, c]`.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `--step-args STEP=ARGS` (repeatable) → extra arguments per step; an unknown step is an error naming the steps.
pub fn parse_step_args(items: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for sa in items {
        let (step, args) = sa
            .split_once('=')
            .with_context(|| format!("--step-args {sa:?} is not STEP=ARGS"))?;
        if !super::plan::ARG_STEPS.contains(&step) {
            bail!(
                "--step-args {sa:?}: unknown step {step:?} (steps: {})",
                super::plan::ARG_STEPS.join(", ")
            );
        }
        out.entry(step.to_string())
            .or_default()
            .extend(args.split_whitespace().map(str::to_string));
    }
    Ok(out)
}

/// The data set as every step will see it: an existing path or a name fetched into `.data/<name>` becomes an
/// absolute path (children and Slurm tasks may run elsewhere); any other name is passed on for the step to
/// resolve. The preset defaults to the data set's name.
pub fn resolve_data(data: &str, preset: Option<&str>) -> Result<(String, String)> {
    let fetched = std::path::Path::new(".data").join(data);
    let path = [PathBuf::from(data), fetched].into_iter().find(|p| p.exists());
    let resolved = match &path {
        Some(p) => std::path::absolute(p)
            .with_context(|| format!("resolving {}", p.display()))?
            .to_string_lossy()
            .into_owned(),
        None => data.to_string(),
    };
    let preset = match preset {
        Some(p) => p.to_string(),
        None if std::path::Path::new(data).components().count() == 1 && !data.contains('.') => data.to_string(),
        None => {
            bail!("--data {data:?} is a path: name its preprocessing with --preset (mnist, fashion-mnist, digits, …)")
        }
    };
    Ok((resolved, preset))
}

impl SweepSpec {
    /// Canonical `sweep` arguments for this spec, as shard tasks rerun it (absolute paths, no scheduling flags).
    pub fn to_args(&self, run_dir: &std::path::Path, alpha: f64) -> Vec<String> {
        let model = match &self.model {
            ModelSource::Builtin(n) => n.clone(),
            ModelSource::File(p) => p.to_string_lossy().into_owned(),
        };
        let list = |v: Vec<String>| v.join(",");
        let mut a: Vec<String> = vec!["sweep".into(), "--model".into(), model];
        a.extend([
            "--data".into(),
            self.data.clone(),
            "--preset".into(),
            self.preset.clone(),
        ]);
        a.extend([
            "--ratios".into(),
            list(self.ratios.iter().map(ToString::to_string).collect()),
            "--policies".into(),
            list(self.policies.clone()),
            "--seeds".into(),
            self.seeds.to_string(),
        ]);
        a.push(
            if self.mode == Mode::FromScratch {
                "--from-scratch"
            } else {
                "--finetune"
            }
            .into(),
        );
        a.extend([
            "--epochs".into(),
            self.epochs.to_string(),
            "--lr".into(),
            self.lr.to_string(),
        ]);
        a.extend(["--steps".into(), list(self.steps.clone())]);
        for (step, args) in &self.step_args {
            a.push(format!("--step-args={step}={}", args.join(" ")));
        }
        a.extend([
            "--alpha".into(),
            alpha.to_string(),
            "--run-dir".into(),
            run_dir.to_string_lossy().into_owned(),
        ]);
        a
    }
}

/// `--shard i/n`: this process runs variants whose index ≡ i (mod n). Zero-based so that Slurm's
/// `$SLURM_ARRAY_TASK_ID` with `--array=0-(n-1)` plugs in directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Self> {
        let (i, n) = s
            .split_once('/')
            .with_context(|| format!("--shard {s:?} is not of the form i/n"))?;
        let index: usize = i
            .trim()
            .parse()
            .with_context(|| format!("--shard {s:?}: i is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .with_context(|| format!("--shard {s:?}: n is not a number"))?;
        if count == 0 || index >= count {
            bail!("--shard {s:?}: need 0 ≤ i < n");
        }
        Ok(Shard { index, count })
    }

    pub fn owns(self, variant_index: usize) -> bool {
        variant_index % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SweepSpec {
        SweepSpec {
            model: ModelSource::Builtin("resnet20".into()),
            data: "digits".into(),
            preset: "digits".into(),
            mode: Mode::Finetune,
            ratios: vec![Ratio::ONE, Ratio { n: 2, m: 1 }],
            policies: vec!["last".into(), "first".into()],
            seeds: 2,
            epochs: 1,
            lr: 0.05,
            steps: vec!["convert".into()],
            step_args: BTreeMap::new(),
        }
    }

    #[test]
    fn ratio_parse_accepts_nm_and_rejects_nonsense() {
        assert_eq!("3:2".parse::<Ratio>().unwrap(), Ratio { n: 3, m: 2 });
        assert_eq!("1:1".parse::<Ratio>().unwrap(), Ratio::ONE);
        for bad in ["2", "1:2", "0:0", "2:2", "a:1", "2:0"] {
            assert!(bad.parse::<Ratio>().is_err(), "{bad}");
        }
    }

    #[test]
    fn variants_put_baseline_once_per_seed() {
        let v = spec().variants();
        let ids: Vec<&str> = v.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "r1-1_none_s0",
                "r1-1_none_s1",
                "r2-1_last_s0",
                "r2-1_last_s1",
                "r2-1_first_s0",
                "r2-1_first_s1"
            ]
        );
    }

    #[test]
    fn validate_requires_baseline_and_known_policies() {
        let mut s = spec();
        s.ratios = vec![Ratio { n: 2, m: 1 }];
        assert!(s.validate().unwrap_err().to_string().contains("1:1"));
        let mut s = spec();
        s.policies = vec!["middle".into()];
        assert!(s.validate().unwrap_err().to_string().contains("middle"));
        assert!(spec().validate().is_ok());
    }

    #[test]
    fn hash_changes_with_results_relevant_settings_only() {
        let a = spec();
        let mut b = spec();
        assert_eq!(a.hash(), b.hash());
        b.epochs = 2;
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn step_args_and_lists_parse() {
        assert_eq!(split_list(" a, b,,c "), ["a", "b", "c"]);
        let sa = parse_step_args(&["train=--limit 5".into(), "train=--lr 0.1".into()]).unwrap();
        assert_eq!(sa["train"], ["--limit", "5", "--lr", "0.1"]);
        let e = parse_step_args(&["dance=--x".into()]).unwrap_err().to_string();
        assert!(e.contains("unknown step \"dance\"") && e.contains("calibrate"), "{e}");
        assert!(parse_step_args(&["train".into()]).is_err());
    }

    #[test]
    fn to_args_round_trips_through_the_cli() {
        use clap::Parser;
        let s = spec();
        let args = s.to_args(std::path::Path::new("/r"), 0.05);
        let cli = crate::cli::Cli::try_parse_from(std::iter::once("ratio".to_string()).chain(args)).unwrap();
        let crate::cli::Command::Sweep(a) = cli.command else {
            panic!("not a sweep")
        };
        let back = crate::commands::sweep::spec_from_args(&a).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.hash(), s.hash());
    }

    #[test]
    fn shard_parse_and_ownership() {
        let s = Shard::parse("1/3").unwrap();
        assert!(s.owns(1) && s.owns(4) && !s.owns(0));
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x").is_err());
    }
}
