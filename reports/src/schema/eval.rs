//! Body of `ratio eval --json` records (kind `eval`, inside the [`super::Record`] envelope, which holds the
//! provenance): accuracy of one or more models on the same samples, with paired comparisons against the first
//! model, and with `--per-sample` every sample's label and prediction so that other tools can pair runs.

use serde::{Deserialize, Serialize};

use super::Body;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub data: DataInfo,
    pub preset: PresetInfo,
    pub run: RunInfo,
    pub models: Vec<ModelResult>,
    /// Each model after the first against the first, on the same samples.
    pub comparisons: Vec<Comparison>,
    /// With `--per-sample`: which samples were scored and their labels; each model's predictions are in
    /// [`ModelResult::predictions`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleSet>,
}

/// The body's name in the family of command bodies (`BenchBody`, `TrainBody`, …).
pub type EvalBody = EvalRecord;

impl Body for EvalRecord {
    const KIND: &'static str = "eval";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub path: String,
    pub format: String,
    pub split: Option<String>,
    /// Samples in the set.
    pub count: usize,
    /// sha256 of the files (`hashed = "files"`) or of a path+size manifest (`"manifest"`).
    pub sha256: String,
    pub hashed: String,
    pub limit: Option<usize>,
    /// Samples scored (after `--limit` and skipped images).
    pub evaluated: usize,
    /// Corrupt images left out under `--on-corrupt skip`.
    pub skipped_corrupt: usize,
    /// The first skipped images' messages (file and decoder error).
    pub skipped_examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetInfo {
    pub name: String,
    /// sha256 of the canonical JSON of `pipeline`.
    pub fingerprint: String,
    pub pipeline: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub batch: usize,
    pub intra_threads: Option<usize>,
    pub seconds: f64,
    /// Samples per second over the whole pass (decoding overlapped with inference, all models).
    pub samples_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub path: String,
    pub sha256: Option<String>,
    pub input: String,
    pub output: String,
    pub samples: u64,
    pub top1: f64,
    pub top5: f64,
    /// k of "top5": min(5, classes).
    pub top_k: usize,
    pub mean_loss: f64,
    /// Seconds spent inside this model's runs.
    pub run_seconds: f64,
    pub per_class: Vec<ClassResult>,
    /// Row = true class, column = predicted class.
    pub confusion: Vec<Vec<u64>>,
    /// With `--per-sample`: the predicted class of every scored sample, in [`SampleSet::indices`] order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<Classes>,
}

impl ModelResult {
    /// Whether each scored sample was classified right, when the record holds per-sample predictions.
    pub fn correct(&self, samples: &SampleSet) -> Option<Vec<bool>> {
        let p = self.predictions.as_ref()?;
        (p.0.len() == samples.labels.0.len()).then(|| p.0.iter().zip(&samples.labels.0).map(|(a, b)| a == b).collect())
    }
}

/// The samples a per-sample record covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    /// Dataset indices of the scored samples, in order (corrupt images skipped under `--on-corrupt skip` are
    /// absent), as ranges `a-b` (inclusive) and single indices, comma-separated.
    pub indices: Indices,
    pub labels: Classes,
}

/// Class indices, one per sample, written as one comma-separated string (`"3,0,7"`): a 10,000-sample test set
/// takes ~20 kB on one line instead of 10,000 pretty-printed lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classes(pub Vec<u32>);

impl Serialize for Classes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        s.serialize_str(&parts.join(","))
    }
}

impl<'de> Deserialize<'de> for Classes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Classes(Vec::new()));
        }
        text.split(',')
            .map(|t| {
                t.parse::<u32>()
                    .map_err(|_| serde::de::Error::custom(format!("class index {t:?} is not a number")))
            })
            .collect::<Result<_, _>>()
            .map(Classes)
    }
}

/// Sample indices, written as comma-separated inclusive ranges (`"0-9999"`, `"0-11,13-99"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Indices(pub Vec<usize>);

impl Serialize for Indices {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut j = i;
            while j + 1 < self.0.len() && self.0[j + 1] == self.0[j] + 1 {
                j += 1;
            }
            parts.push(if j > i {
                format!("{start}-{}", self.0[j])
            } else {
                start.to_string()
            });
            i = j + 1;
        }
        s.serialize_str(&parts.join(","))
    }
}

impl<'de> Deserialize<'de> for Indices {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = |t: &str| serde::de::Error::custom(format!("sample range {t:?} is not N or N-M with N ≤ M"));
        let mut out = Vec::new();
        for t in text.split(',').filter(|t| !t.is_empty()) {
            let (a, b) = t.split_once('-').unwrap_or((t, t));
            let (a, b): (usize, usize) = (a.parse().map_err(|_| bad(t))?, b.parse().map_err(|_| bad(t))?);
            if a > b {
                return Err(bad(t));
            }
            out.extend(a..=b);
        }
        Ok(Indices(out))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: usize,
    pub name: String,
    pub count: u64,
    pub correct: u64,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub model: String,
    /// Share of samples where both predict the same class.
    pub agreement: f64,
    /// McNemar discordant counts: baseline right and model wrong, and the reverse.
    pub baseline_only_correct: u64,
    pub model_only_correct: u64,
    /// Two-sided exact McNemar p-value.
    pub mcnemar_p: f64,
    /// top1(model) − top1(baseline), with its paired percentile bootstrap interval (`null` with 0 resamples).
    pub top1_diff: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub ci_level: f64,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_sample_fields_are_compact_and_round_trip() {
        let set = SampleSet {
            indices: Indices(vec![0, 1, 2, 3, 5, 7, 8]),
            labels: Classes(vec![3, 0, 7, 1, 1, 9, 2]),
        };
        let v = serde_json::to_value(&set).unwrap();
        assert_eq!(v["indices"], "0-3,5,7-8");
        assert_eq!(v["labels"], "3,0,7,1,1,9,2");
        assert_eq!(serde_json::from_value::<SampleSet>(v).unwrap(), set);
        for bad in ["\"3-1\"", "\"x\"", "\"1-\""] {
            assert!(serde_json::from_str::<Indices>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Classes>("\"1,,2\"").is_err());
        assert_eq!(serde_json::from_str::<Classes>("\"\"").unwrap(), Classes(vec![]));
    }
}
