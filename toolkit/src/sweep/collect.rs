//! Reading a run directory's verified step records into typed results per variant. Each step's output is the
//! child's own record, read with [`Record::body_as`] as the body type of the command that wrote it: a field that
//! moves or changes type breaks the build (here) or is reported as an unreadable record, never silently dropped
//! from the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reports::schema::bench::BenchBody;
use reports::schema::convert::ConvertBody;
use reports::schema::eval::EvalBody;
use reports::schema::inspect::InspectBody;
use reports::schema::richness::{LayerMetrics, RichnessBody};
use reports::schema::sweep::{Stage, SweepManifest, SweepStep, Variant};
use reports::schema::train::{StepRecord, TrainBody, parse_metrics, step_records};
use reports::schema::{Body, Record, SchemaError};

use super::calibrate::CalibrateAccuracy;
use super::plan::StepPlan;
use super::store::{StepState, check_step};

/// A scalar metric of one variant: its name, and whether higher is better.
pub struct MetricDef {
    pub name: &'static str,
    pub higher_is_better: bool,
}

/// Scalar metrics with a fixed name. Latency metrics are named by their bench group ([`latency_metric`]), and
/// richness means (`mean_<metric>`) are added by the summary over the layers every variant shares.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "accuracy",
        higher_is_better: true,
    },
    MetricDef {
        name: "params",
        higher_is_better: false,
    },
    MetricDef {
        name: "macs",
        higher_is_better: false,
    },
    MetricDef {
        name: "relus",
        higher_is_better: false,
    },
];

/// One per-layer value of a richness record.
pub type LayerGetter = fn(&LayerMetrics) -> Option<f64>;

/// Per-layer richness metrics (name, higher is better, getter): averaged over the common layers for the summary
/// table, plotted by depth.
pub const LAYER_METRICS: &[(&str, bool, LayerGetter)] = &[
    ("effective_rank", true, |l| l.effective_rank),
    ("participation_ratio", true, |l| l.participation_ratio),
    ("dead_fraction", false, |l| l.dead_fraction),
    ("sparsity", false, |l| l.sparsity),
];

/// `latency_p50_ms/b1/t1`: the p50 of the bench group at batch 1 and 1 intra-op thread.
pub fn latency_metric(batch: usize, threads: usize) -> String {
    format!("latency_p50_ms/b{batch}/t{threads}")
}

/// (batch, threads) of a latency metric name.
pub fn latency_group(metric: &str) -> Option<(usize, usize)> {
    let rest = metric.strip_prefix("latency_p50_ms/b")?;
    let (b, t) = rest.split_once("/t")?;
    Some((b.parse().ok()?, t.parse().ok()?))
}

pub fn higher_is_better(metric: &str) -> Option<bool> {
    if latency_group(metric).is_some() {
        return Some(false);
    }
    if let Some(m) = METRICS.iter().find(|m| m.name == metric) {
        return Some(m.higher_is_better);
    }
    LAYER_METRICS
        .iter()
        .find(|(n, ..)| metric.strip_prefix("mean_") == Some(n))
        .map(|(_, h, _)| *h)
}

/// One variant's per-sample evaluation: which samples, and whether each was right.
#[derive(Debug, Clone, PartialEq)]
pub struct PerSample {
    /// Identity of the scored data (sha256 and the sample indices): runs pair only on identical samples.
    pub data_sha256: String,
    pub indices: Vec<usize>,
    pub correct: Vec<bool>,
}

/// Latencies of the variant and of its 1:1 reference from one interleaved bench group, iteration by iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyPairs {
    pub batch: usize,
    pub threads: usize,
    pub variant_ms: Vec<f64>,
    pub reference_ms: Vec<f64>,
}

/// An accuracy at one pipeline stage and what it was measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct StageValue {
    pub accuracy: f64,
    pub source: String,
}

/// What one variant produced.
#[derive(Debug, Clone, Default)]
pub struct VariantResult {
    pub metrics: BTreeMap<String, f64>,
    /// The variant model's analysed layers (richness).
    pub layers: Vec<LayerMetrics>,
    /// The 1:1 reference's layers from the same richness run (where removed activations sit).
    pub reference_layers: Vec<LayerMetrics>,
    /// Activations the conversion removed (or made leaky).
    pub removed: Vec<String>,
    /// Per-step training records of the variant's training run.
    pub curve: Vec<StepRecord>,
    /// CKA against the reference: (reference layers, own layers, values[own][ref]).
    pub cka: Option<Cka>,
    pub per_sample: Option<PerSample>,
    pub latency: Vec<LatencyPairs>,
    pub stages: BTreeMap<Stage, StageValue>,
}

/// (reference layers, own layers, values[own][ref]).
pub type Cka = (Vec<String>, Vec<String>, Vec<Vec<f64>>);

/// Outcome of reading all records of a run dir.
#[derive(Debug, Default)]
pub struct Collected {
    pub results: Vec<(Variant, VariantResult)>,
    pub ok: usize,
    pub failed: usize,
    pub missing: usize,
    /// Records that were not trusted or could not be read as their command's body, with why.
    pub untrusted: Vec<String>,
    /// ONNX Runtime versions and devices the steps reported (one each when the run is homogeneous).
    pub ort_versions: BTreeSet<String>,
    pub devices: BTreeSet<String>,
    /// Whether a calibrate step was planned (the stage table then has a calibrated column).
    pub calibrated: bool,
}

/// The typed outputs of one variant's steps.
#[derive(Default)]
struct Outputs {
    convert: Option<ConvertBody>,
    calibrate: Option<CalibrateAccuracy>,
    train: Option<TrainBody>,
    steps: Vec<StepRecord>,
    inspect: Option<InspectBody>,
    eval: Option<EvalBody>,
    bench: Option<BenchBody>,
    richness: Option<RichnessBody>,
}

fn body<B: Body>(rec: &Option<Record>) -> Result<B, SchemaError> {
    match rec {
        Some(r) => r.body_as::<B>(),
        None => Err(SchemaError::WrongKind {
            expected: B::KIND.to_string(),
            found: "no record (the step printed none)".into(),
        }),
    }
}

impl Outputs {
    /// File one verified step's record under its step; a body that does not read is an error naming it.
    fn add(&mut self, plan: &StepPlan, output: &Option<Record>) -> Result<(), String> {
        let fail = |e: SchemaError| format!("{}: {e}", plan.key);
        match plan.step.as_str() {
            "convert" => self.convert = Some(body(output).map_err(fail)?),
            "calibrate" => {
                let rec = output
                    .as_ref()
                    .ok_or_else(|| format!("{}: the step printed no record", plan.key))?;
                self.calibrate = Some(CalibrateAccuracy::read(rec).map_err(fail)?);
            }
            "train" => {
                let t: TrainBody = body(output).map_err(fail)?;
                // The metrics log is one of the step's recorded (hash-checked) outputs.
                if let Some(log) = plan.outputs.iter().find(|p| p.ends_with("metrics.jsonl")) {
                    let text =
                        std::fs::read_to_string(log).map_err(|e| format!("{}: {}: {e}", plan.key, log.display()))?;
                    let lines = parse_metrics(&text).map_err(|e| format!("{}: {}: {e}", plan.key, log.display()))?;
                    self.steps = step_records(&lines);
                }
                self.train = Some(t);
            }
            "inspect" => self.inspect = Some(body(output).map_err(fail)?),
            "eval" => self.eval = Some(body(output).map_err(fail)?),
            "bench" => self.bench = Some(body(output).map_err(fail)?),
            "richness" => self.richness = Some(body(output).map_err(fail)?),
            _ => {}
        }
        Ok(())
    }
}

/// Read every planned step's record; untrusted or unreadable ones are listed and ignored.
pub fn collect(run_dir: &Path, manifest: &SweepManifest, plans: &[StepPlan]) -> Collected {
    let mut c = Collected {
        calibrated: plans.iter().any(|p| p.step == "calibrate"),
        ..Default::default()
    };
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    for p in plans {
        match check_step(run_dir, p) {
            StepState::Done(rec) => {
                c.ok += 1;
                c.ort_versions.extend(rec.provenance.ort_version.clone());
                c.devices.extend(rec.provenance.device.clone());
                let (Some(v), Ok(step)) = (&p.variant, rec.body_as::<SweepStep>()) else {
                    continue;
                };
                if let Err(why) = outputs.entry(v.id.clone()).or_default().add(p, &step.output) {
                    c.untrusted.push(why);
                }
            }
            StepState::Failed(_) => c.failed += 1,
            StepState::Missing => c.missing += 1,
            StepState::Corrupt(why) | StepState::Stale(why) => {
                c.missing += 1;
                c.untrusted.push(format!("{}: {why}", p.key));
            }
        }
    }
    for v in &manifest.variants {
        let r = outputs.get(&v.id).map(result_of).unwrap_or_default();
        c.results.push((v.clone(), r));
    }
    c
}

fn result_of(o: &Outputs) -> VariantResult {
    let mut r = VariantResult::default();
    if let Some(e) = &o.eval
        && let Some(m) = e.models.first()
    {
        r.metrics.insert("accuracy".into(), m.top1);
        r.per_sample = e.samples.as_ref().and_then(|s| {
            Some(PerSample {
                data_sha256: e.data.sha256.clone(),
                indices: s.indices.0.clone(),
                correct: m.correct(s)?,
            })
        });
    }
    if let Some(i) = &o.inspect {
        r.metrics.insert("params".into(), i.params_total as f64);
        r.metrics.insert("macs".into(), i.macs_total as f64);
        r.metrics.insert("relus".into(), i.op_count("Relu") as f64);
    }
    if let Some(b) = &o.bench {
        for g in &b.runs {
            // The sweep benches [1:1 reference, variant]: the variant is the last model of each group.
            let (Some(own), Some(first)) = (g.results.last(), g.results.first()) else {
                continue;
            };
            r.metrics.insert(latency_metric(g.batch, g.threads), own.latency_ms.p50);
            if g.results.len() >= 2 {
                r.latency.push(LatencyPairs {
                    batch: g.batch,
                    threads: g.threads,
                    variant_ms: own.samples_ms.clone(),
                    reference_ms: first.samples_ms.clone(),
                });
            }
        }
    }
    if let Some(rich) = &o.richness {
        // With the reference listed first, the variant is the last analysed model.
        if let (Some(own), Some(first)) = (rich.models.last(), rich.models.first()) {
            r.layers = own.layers.clone();
            if rich.models.len() > 1 {
                r.reference_layers = first.layers.clone();
            }
        }
        r.cka = rich.cka.last().and_then(cka_of);
    }
    if let Some(cv) = &o.convert {
        r.removed = cv.changed.clone();
    }
    r.curve = o.steps.clone();
    r.stages = stages(o);
    r
}

/// Accuracy before conversion, after it, after calibration and after training, from the records that measured
/// each (see [`Stage`]).
fn stages(o: &Outputs) -> BTreeMap<Stage, StageValue> {
    let mut out = BTreeMap::new();
    let eval_data = o.eval.as_ref().map(|e| (e.data.sha256.as_str(), e.data.evaluated));
    if let Some(t) = &o.train
        && let Some(acc) = t.initial_val_acc
    {
        // The trainer scores its input before the first step: the calibrated model when calibration ran, else
        // the converted one.
        let same = eval_data == Some((t.val_data.sha256.as_str(), t.val_data.count));
        let on = if same {
            format!("the {} split eval scores", t.val_data.split)
        } else {
            format!("the trainer's validation samples ({}), not eval's", t.val_data.split)
        };
        let stage = if o.calibrate.is_some() {
            Stage::Calibrated
        } else {
            Stage::Converted
        };
        out.insert(
            stage,
            StageValue {
                accuracy: acc,
                source: format!("ratio finetune before its first step, on {on}"),
            },
        );
    }
    if let Some(cal) = &o.calibrate {
        out.insert(
            Stage::Converted,
            StageValue {
                accuracy: cal.before_top1,
                source: format!("ratio calibrate before calibrating, on {}", cal.samples_on),
            },
        );
        out.entry(Stage::Calibrated).or_insert(StageValue {
            accuracy: cal.after_top1,
            source: format!("ratio calibrate after calibrating, on {}", cal.samples_on),
        });
    }
    if let Some(e) = &o.eval
        && let Some(m) = e.models.first()
    {
        // Eval scores the model the variant ends with: the fine-tuned one, or without training the converted (or
        // calibrated) one itself.
        let stage = match (&o.train, &o.calibrate) {
            (Some(_), _) => Stage::FineTuned,
            (None, Some(_)) => Stage::Calibrated,
            (None, None) => Stage::Converted,
        };
        out.insert(
            stage,
            StageValue {
                accuracy: m.top1,
                source: format!("ratio eval, {} samples of {}", e.data.evaluated, e.data.path),
            },
        );
    }
    out
}

fn cka_of(c: &reports::schema::richness::CkaMatrix) -> Option<Cka> {
    // `ratio richness` puts the reference on the left: values[ref][own]; the report wants rows = own layers.
    let m = &c.values;
    if m.len() != c.left_layers.len() || m.iter().any(|r| r.len() != c.right_layers.len()) {
        return None;
    }
    let t: Vec<Vec<f64>> = (0..c.right_layers.len())
        .map(|j| m.iter().map(|r| r[j].unwrap_or(f64::NAN)).collect())
        .collect();
    Some((c.left_layers.clone(), c.right_layers.clone(), t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_metric_names_carry_their_group() {
        assert_eq!(latency_metric(8, 2), "latency_p50_ms/b8/t2");
        assert_eq!(latency_group("latency_p50_ms/b8/t2"), Some((8, 2)));
        assert_eq!(latency_group("latency_p50_ms"), None);
        assert_eq!(higher_is_better("latency_p50_ms/b1/t1"), Some(false));
        assert_eq!(higher_is_better("mean_effective_rank"), Some(true));
        assert_eq!(higher_is_better("accuracy"), Some(true));
        assert_eq!(higher_is_better("nonsense"), None);
    }

    fn eval_body(top1: f64) -> EvalBody {
        serde_json::from_value(serde_json::json!({
            "data": {"path": "d", "format": "idx", "split": "test", "count": 10, "sha256": "s", "hashed": "files",
                     "limit": null, "evaluated": 10, "skipped_corrupt": 0, "skipped_examples": []},
            "preset": {"name": "p", "fingerprint": "f", "pipeline": {}},
            "run": {"batch": 1, "intra_threads": null, "seconds": 1.0, "samples_per_second": 10.0},
            "models": [{"path": "m", "sha256": null, "input": "x", "output": "y", "samples": 10, "top1": top1,
                        "top5": 1.0, "top_k": 5, "mean_loss": 1.0, "run_seconds": 1.0, "per_class": [],
                        "confusion": []}],
            "comparisons": []
        }))
        .unwrap()
    }

    #[test]
    fn eval_without_training_measures_the_converted_or_calibrated_model() {
        let o = Outputs {
            eval: Some(eval_body(0.6)),
            ..Default::default()
        };
        let st = stages(&o);
        assert_eq!(st.keys().copied().collect::<Vec<_>>(), [Stage::Converted]);
        assert_eq!(st[&Stage::Converted].accuracy, 0.6);
        let o = Outputs {
            eval: Some(eval_body(0.9)),
            calibrate: Some(CalibrateAccuracy {
                before_top1: 0.5,
                after_top1: 0.88,
                samples_on: "held out".into(),
            }),
            ..Default::default()
        };
        let st = stages(&o);
        // Calibrate's own before is the converted stage; eval of the calibrated model is the calibrated stage.
        assert_eq!(
            st.iter().map(|(k, v)| (*k, v.accuracy)).collect::<Vec<_>>(),
            [(Stage::Converted, 0.5), (Stage::Calibrated, 0.9)]
        );
    }

    #[test]
    fn cka_rows_are_the_variant_layers() {
        let c = reports::schema::richness::CkaMatrix {
            left: "ref".into(),
            right: "own".into(),
            left_layers: vec!["a".into(), "b".into()],
            right_layers: vec!["x".into(), "y".into(), "z".into()],
            samples: 3,
            values: vec![vec![Some(1.0), Some(0.5), None], vec![Some(0.2), Some(0.9), Some(0.3)]],
        };
        let (cols, rows, m) = cka_of(&c).unwrap();
        assert_eq!((cols.len(), rows.len()), (2, 3));
        assert_eq!(m[1], vec![0.5, 0.9]);
        assert!(m[2][0].is_nan());
    }
}
