//! What a sweep is: the validated grid and settings, its variants, and the hash that identifies it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use reports::schema::sweep::Variant;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Built-in architectures `ratio train --model` knows.
pub const BUILTIN_MODELS: &[&str] = &["resnet20", "vgg", "densenet", "plain"];

/// Placement policies `ratio convert --keep` knows.
pub const POLICIES: &[&str] = &["first", "last", "spread", "random"];

/// `N:M` with N ≥ M ≥ 1 (1:1 is the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ratio {
    pub n: u32,
    pub m: u32,
}

impl Ratio {
    pub const ONE: Ratio = Ratio { n: 1, m: 1 };

    pub fn parse(s: &str) -> Result<Self> {
        let (n, m) = s
            .trim()
            .split_once(':')
            .with_context(|| format!("ratio {s:?} is not of the form N:M"))?;
        let n: u32 = n
            .parse()
            .with_context(|| format!("ratio {s:?}: N is not a positive integer"))?;
        let m: u32 = m
            .parse()
            .with_context(|| format!("ratio {s:?}: M is not a positive integer"))?;
        if m == 0 || n < m {
            bail!("ratio {s:?}: need N ≥ M ≥ 1 (more convolutions than ReLUs; 1:1 is the baseline)");
        }
        if n == m && n != 1 {
            bail!("ratio {s:?} equals 1:1; write 1:1");
        }
        Ok(Ratio { n, m })
    }

    pub fn value(self) -> f64 {
        f64::from(self.n) / f64::from(self.m)
    }

    pub fn is_baseline(self) -> bool {
        self.n == self.m
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

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
            let policies: Vec<&str> = if r.is_baseline() {
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
        hex::encode(Sha256::digest(&json))
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
        assert_eq!(Ratio::parse("3:2").unwrap(), Ratio { n: 3, m: 2 });
        assert_eq!(Ratio::parse("1:1").unwrap(), Ratio::ONE);
        for bad in ["2", "1:2", "0:0", "2:2", "a:1", "2:0"] {
            assert!(Ratio::parse(bad).is_err(), "{bad}");
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
    fn shard_parse_and_ownership() {
        let s = Shard::parse("1/3").unwrap();
        assert!(s.owns(1) && s.owns(4) && !s.owns(0));
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x").is_err());
    }
}
