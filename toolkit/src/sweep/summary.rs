//! From verified step records to numbers: per-variant metrics pulled out of each step's JSON, then per-cell
//! mean ± std over seeds, paired tests against 1:1, the best cell per metric, and sentences of what holds.
//!
//! Step outputs are read by key name wherever they sit in the step's JSON (`top1` in an eval record's body,
//! `p50_ms` in a bench record): the producing commands own their schemas, and this keeps the sweep from breaking
//! when they nest a field differently. Only records that pass [`check_step`] are read.

use std::collections::BTreeMap;
use std::path::Path;

use reports::schema::sweep::{
    Best, CellSummary, Comparison, MetricStats, SweepManifest, SweepStep, SweepSummary, Variant,
};
use serde_json::Value;

use super::plan::StepPlan;
use super::stats::{holm, mean_std, paired_t_test};
use super::store::{StepState, check_step};

/// A scalar metric: name, step it comes from, keys it may appear under, whether higher is better.
pub struct MetricDef {
    pub name: &'static str,
    pub step: &'static str,
    pub keys: &'static [&'static str],
    pub higher_is_better: bool,
}

pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "accuracy",
        step: "eval",
        keys: &["top1", "top1_accuracy", "accuracy", "acc"],
        higher_is_better: true,
    },
    MetricDef {
        name: "latency_p50_ms",
        step: "bench",
        keys: &["p50_ms", "latency_p50_ms", "p50"],
        higher_is_better: false,
    },
    MetricDef {
        name: "params",
        step: "inspect",
        keys: &["params_total", "params", "parameters"],
        higher_is_better: false,
    },
    MetricDef {
        name: "macs",
        step: "inspect",
        keys: &["macs_total", "macs"],
        higher_is_better: false,
    },
    // `ratio inspect` reports op counts in `op_histogram`.
    MetricDef {
        name: "relus",
        step: "inspect",
        keys: &["Relu", "relu_count", "relus"],
        higher_is_better: false,
    },
];

/// Per-layer richness metrics averaged over layers for the summary table, kept per layer for depth plots.
pub const LAYER_METRICS: &[(&str, bool)] = &[
    ("effective_rank", true),
    ("participation_ratio", true),
    ("dead_fraction", false),
    ("sparsity", false),
];

/// What one variant produced.
#[derive(Debug, Clone, Default)]
pub struct VariantResult {
    pub metrics: BTreeMap<String, f64>,
    pub layer_metrics: BTreeMap<String, Vec<f64>>,
    /// (epoch or step, loss) from the training step.
    pub curve: Vec<(f64, f64)>,
    /// CKA against the reference: (reference layers, own layers, values[own][ref]).
    pub cka: Option<Cka>,
}

/// (reference layers, own layers, values[own][ref]).
pub type Cka = (Vec<String>, Vec<String>, Vec<Vec<f64>>);

/// First number under any of `keys`, breadth-first so a top-level field beats a nested one.
pub fn find_number(v: &Value, keys: &[&str]) -> Option<f64> {
    let mut queue = std::collections::VecDeque::from([v]);
    while let Some(x) = queue.pop_front() {
        match x {
            Value::Object(m) => {
                for k in keys {
                    if let Some(n) = m.get(*k).and_then(Value::as_f64) {
                        return Some(n);
                    }
                }
                queue.extend(m.values());
            }
            Value::Array(a) => queue.extend(a.iter()),
            _ => {}
        }
    }
    None
}

/// Every number stored under `key`, depth-first in document order (per-layer lists).
pub fn all_numbers(v: &Value, key: &str, out: &mut Vec<f64>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let Some(n) = x.as_f64().filter(|_| k == key) {
                    out.push(n);
                    continue;
                }
                all_numbers(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all_numbers(x, key, out)),
        _ => {}
    }
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn matrix(v: &Value) -> Option<Vec<Vec<f64>>> {
    let rows = v.as_array()?;
    rows.iter()
        .map(|r| {
            r.as_array()
                .map(|c| c.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        })
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn cka_of(v: &Value) -> Option<Cka> {
    let c = find_key(v, "cka")?;
    // `ratio richness`: a list of {left_layers, right_layers, values[left][right]} with the reference on the left.
    if let Some(Value::Object(o)) = c.as_array().and_then(|a| a.last()) {
        let m = matrix(o.get("values")?)?;
        let left = strings(o.get("left_layers"));
        let right = strings(o.get("right_layers"));
        if m.len() == left.len() && m.iter().all(|r| r.len() == right.len()) {
            let t: Vec<Vec<f64>> = (0..right.len()).map(|j| m.iter().map(|r| r[j]).collect()).collect();
            return Some((left, right, t));
        }
        return None;
    }
    let (m, rl, ol) = match c {
        Value::Array(_) => (matrix(c)?, vec![], vec![]),
        Value::Object(o) => (
            matrix(o.get("matrix").or_else(|| o.get("values"))?)?,
            strings(o.get("reference_layers").or_else(|| o.get("cols"))),
            strings(o.get("layers").or_else(|| o.get("rows"))),
        ),
        _ => return None,
    };
    let ncol = m.first().map_or(0, Vec::len);
    let rl = if rl.len() == ncol {
        rl
    } else {
        (0..ncol).map(|i| format!("L{i}")).collect()
    };
    let ol = if ol.len() == m.len() {
        ol
    } else {
        (0..m.len()).map(|i| format!("L{i}")).collect()
    };
    Some((rl, ol, m))
}

fn curve_of(v: &Value) -> Vec<(f64, f64)> {
    for key in ["history", "epochs", "curve", "log"] {
        if let Some(Value::Array(rows)) = find_key(v, key) {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let loss = find_number(r, &["train_loss", "loss"])?;
                    let x = find_number(r, &["epoch", "step"]).unwrap_or(i as f64 + 1.0);
                    Some((x, loss))
                })
                .collect();
            if !pts.is_empty() {
                return pts;
            }
        }
    }
    vec![]
}

/// Outcome of reading all records of a run dir.
#[derive(Debug, Default)]
pub struct Collected {
    pub results: Vec<(Variant, VariantResult)>,
    pub ok: usize,
    pub failed: usize,
    pub missing: usize,
    /// Records that were not trusted, with why.
    pub untrusted: Vec<String>,
    /// ONNX Runtime versions and devices the steps reported (one each when the run is homogeneous).
    pub ort_versions: std::collections::BTreeSet<String>,
    pub devices: std::collections::BTreeSet<String>,
}

/// Read every planned step's record; untrusted ones are listed and ignored.
pub fn collect(run_dir: &Path, manifest: &SweepManifest, plans: &[StepPlan]) -> Collected {
    let mut c = Collected::default();
    let mut outputs: BTreeMap<(String, String), Value> = BTreeMap::new();
    for p in plans {
        match check_step(run_dir, p) {
            StepState::Done(rec) => {
                c.ok += 1;
                c.ort_versions.extend(rec.provenance.ort_version.clone());
                c.devices.extend(rec.provenance.device.clone());
                if let (Some(v), Ok(body)) = (&p.variant, rec.body_as::<SweepStep>()) {
                    outputs.insert((v.id.clone(), p.step.clone()), body.output);
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
        let get = |step: &str| outputs.get(&(v.id.clone(), step.to_string()));
        let mut r = VariantResult::default();
        for m in METRICS {
            // Parameter counts may come from any step that reports them; prefer the declared one.
            let found = get(m.step).and_then(|o| find_number(o, m.keys)).or_else(|| {
                ["convert", "eval", "bench", "train"]
                    .iter()
                    .find_map(|s| get(s).and_then(|o| find_number(o, m.keys)))
            });
            if let Some(x) = found.filter(|x| x.is_finite()) {
                r.metrics.insert(m.name.to_string(), x);
            }
        }
        if let Some(o) = get("richness") {
            // With the reference listed first, the variant is the last analysed model.
            let own = find_key(o, "models")
                .and_then(Value::as_array)
                .and_then(|m| m.last())
                .unwrap_or(o);
            for (name, _) in LAYER_METRICS {
                let mut xs = Vec::new();
                all_numbers(own, name, &mut xs);
                xs.retain(|x| x.is_finite());
                if !xs.is_empty() {
                    r.metrics
                        .insert(format!("mean_{name}"), xs.iter().sum::<f64>() / xs.len() as f64);
                    r.layer_metrics.insert(name.to_string(), xs);
                }
            }
            r.cka = cka_of(o);
        }
        if let Some(o) = get("train") {
            r.curve = curve_of(o);
        }
        c.results.push((v.clone(), r));
    }
    c
}

fn higher_is_better(metric: &str) -> Option<bool> {
    if let Some(m) = METRICS.iter().find(|m| m.name == metric) {
        return Some(m.higher_is_better);
    }
    LAYER_METRICS
        .iter()
        .find(|(n, _)| metric == format!("mean_{n}"))
        .map(|(_, h)| *h)
}

/// Aggregate over seeds, compare with 1:1, and say what the data support.
pub fn summarize(manifest: &SweepManifest, collected: &Collected, alpha: f64) -> SweepSummary {
    // (ratio, policy) in manifest order.
    let mut cells: Vec<(String, String)> = Vec::new();
    for v in &manifest.variants {
        let k = (v.ratio.clone(), v.policy.clone());
        if !cells.contains(&k) {
            cells.push(k);
        }
    }
    let per_seed = |ratio: &str, policy: &str, metric: &str| -> BTreeMap<u64, f64> {
        collected
            .results
            .iter()
            .filter(|(v, _)| v.ratio == ratio && v.policy == policy)
            .filter_map(|(v, r)| r.metrics.get(metric).map(|x| (v.seed, *x)))
            .collect()
    };
    let metric_names: Vec<String> = {
        let mut n: Vec<String> = collected
            .results
            .iter()
            .flat_map(|(_, r)| r.metrics.keys().cloned())
            .collect();
        n.sort();
        n.dedup();
        n
    };
    let mut cell_summaries = Vec::new();
    for (ratio, policy) in &cells {
        let mut metrics = BTreeMap::new();
        for m in &metric_names {
            let vals: Vec<f64> = per_seed(ratio, policy, m).into_values().collect();
            if !vals.is_empty() {
                let (mean, std) = mean_std(&vals);
                metrics.insert(
                    m.clone(),
                    MetricStats {
                        mean,
                        std,
                        n: vals.len(),
                        values: vals,
                    },
                );
            }
        }
        let done: Vec<u64> = collected
            .results
            .iter()
            .filter(|(v, r)| &v.ratio == ratio && &v.policy == policy && !r.metrics.is_empty())
            .map(|(v, _)| v.seed)
            .collect();
        let missing_seeds = (0..manifest.seeds).filter(|s| !done.contains(s)).collect();
        cell_summaries.push(CellSummary {
            ratio: ratio.clone(),
            policy: policy.clone(),
            metrics,
            missing_seeds,
        });
    }

    // Paired by seed against the 1:1 cell; Holm-corrected within each metric's family of comparisons.
    // Parameters, MACs and ReLU counts are fixed by the architecture: report them, but neither test nor rank them.
    let structural = |m: &str| matches!(m, "params" | "macs" | "relus");
    let mut comparisons = Vec::new();
    for m in metric_names.iter().filter(|m| !structural(m)) {
        let base = per_seed("1:1", "none", m);
        let mut fam = Vec::new();
        for (ratio, policy) in cells.iter().filter(|(r, _)| r != "1:1") {
            let other = per_seed(ratio, policy, m);
            let d: Vec<f64> = other.iter().filter_map(|(s, x)| base.get(s).map(|b| x - b)).collect();
            if d.is_empty() {
                continue;
            }
            let mean_diff = d.iter().sum::<f64>() / d.len() as f64;
            let p = paired_t_test(&d).map(|(_, p)| p);
            fam.push(Comparison {
                ratio: ratio.clone(),
                policy: policy.clone(),
                metric: m.clone(),
                mean_diff,
                n_pairs: d.len(),
                test: "paired t-test over seeds (two-sided), Holm-corrected per metric".into(),
                p_value: p,
                significant: false,
            });
        }
        let idx: Vec<usize> = (0..fam.len()).filter(|&i| fam[i].p_value.is_some()).collect();
        let adj = holm(&idx.iter().map(|&i| fam[i].p_value.unwrap_or(1.0)).collect::<Vec<_>>());
        for (k, &i) in idx.iter().enumerate() {
            fam[i].p_value = Some(adj[k]);
            fam[i].significant = adj[k] < alpha;
        }
        comparisons.extend(fam);
    }

    let mut best = Vec::new();
    for m in metric_names.iter().filter(|m| !structural(m)) {
        let Some(higher) = higher_is_better(m) else { continue };
        let pick = cell_summaries
            .iter()
            .filter_map(|c| c.metrics.get(m).map(|s| (c, s.mean)))
            .filter(|(_, x)| x.is_finite())
            .max_by(|a, b| {
                if higher {
                    a.1.total_cmp(&b.1)
                } else {
                    b.1.total_cmp(&a.1)
                }
            });
        if let Some((c, mean)) = pick {
            best.push(Best {
                metric: m.clone(),
                direction: if higher { "higher" } else { "lower" }.into(),
                ratio: c.ratio.clone(),
                policy: c.policy.clone(),
                mean,
            });
        }
    }

    let conclusions = conclude(&comparisons, manifest.seeds, alpha);
    SweepSummary {
        sweep_hash: manifest.sweep_hash.clone(),
        model: manifest.model.clone(),
        data: manifest.data.clone(),
        alpha,
        cells: cell_summaries,
        comparisons,
        best,
        conclusions,
        steps_ok: collected.ok,
        steps_failed: collected.failed,
        steps_missing: collected.missing,
    }
}

fn fmt_diff(metric: &str, d: f64) -> String {
    if metric == "accuracy" && d.abs() <= 1.0 {
        format!("{:+.2} points", d * 100.0)
    } else {
        format!("{d:+.4}")
    }
}

/// Plain sentences for the headline metrics: accuracy and latency.
pub fn conclude(comparisons: &[Comparison], seeds: u64, alpha: f64) -> Vec<String> {
    let mut out = Vec::new();
    for metric in ["accuracy", "latency_p50_ms"] {
        let cs: Vec<&Comparison> = comparisons.iter().filter(|c| c.metric == metric).collect();
        if cs.is_empty() {
            continue;
        }
        let sig: Vec<&&Comparison> = cs.iter().filter(|c| c.significant).collect();
        let untestable = cs.iter().all(|c| c.p_value.is_none());
        if untestable {
            out.push(format!(
                "{metric}: no test possible ({} seed{} per variant, or identical differences); differences from 1:1 \
                 are descriptive only — rerun with --seeds 3 or more.",
                seeds,
                if seeds == 1 { "" } else { "s" }
            ));
            continue;
        }
        if sig.is_empty() {
            let largest = cs.iter().max_by(|a, b| a.mean_diff.abs().total_cmp(&b.mean_diff.abs()));
            let detail = largest
                .map(|c| {
                    format!(
                        " (largest difference: {} {} {}, p = {:.3})",
                        c.ratio,
                        c.policy,
                        fmt_diff(metric, c.mean_diff),
                        c.p_value.unwrap_or(1.0)
                    )
                })
                .unwrap_or_default();
            out.push(format!(
                "{metric}: no significant difference between any N:M variant and 1:1 at α = {alpha}{detail}."
            ));
        } else {
            for c in sig {
                let better = (c.mean_diff > 0.0) == higher_is_better(metric).unwrap_or(true);
                out.push(format!(
                    "{metric}: {} ({}) is significantly {} than 1:1 ({}, adjusted p = {:.3}, {} paired seeds).",
                    c.ratio,
                    c.policy,
                    if better { "better" } else { "worse" },
                    fmt_diff(metric, c.mean_diff),
                    c.p_value.unwrap_or(1.0),
                    c.n_pairs
                ));
            }
        }
    }
    if out.is_empty() {
        out.push(
            "No variant finished both its own pipeline and the 1:1 baseline's for any seed: nothing to compare yet."
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn find_number_prefers_shallow_keys_and_collects_layers() {
        let v = json!({"body": {"top1": 0.9, "per_class": [{"top1": 0.1}]}, "layers": [{"effective_rank": 3.0}, {"effective_rank": 5.0}]});
        assert_eq!(find_number(&v, &["top1"]), Some(0.9));
        let mut xs = vec![];
        all_numbers(&v, "effective_rank", &mut xs);
        assert_eq!(xs, vec![3.0, 5.0]);
    }

    #[test]
    fn cka_from_richness_records_is_variant_by_reference() {
        let v = json!({"body": {"models": [], "cka": [{"left_layers": ["a", "b"], "right_layers": ["x", "y", "z"],
            "values": [[1.0, 0.5, null], [0.2, 0.9, 0.3]]}]}});
        let (cols, rows, m) = cka_of(&v).unwrap();
        assert_eq!(
            (cols, rows),
            (
                vec!["a".to_string(), "b".into()],
                vec!["x".to_string(), "y".into(), "z".into()]
            )
        );
        assert_eq!(m[1], vec![0.5, 0.9]);
        assert!(m[2][0].is_nan());
    }

    fn manifest(seeds: u64) -> SweepManifest {
        let mut variants = vec![];
        for (r, p) in [("1:1", "none"), ("2:1", "last")] {
            for s in 0..seeds {
                variants.push(Variant {
                    id: format!("{r}{p}{s}"),
                    ratio: r.into(),
                    policy: p.into(),
                    seed: s,
                });
            }
        }
        SweepManifest {
            sweep_hash: "h".into(),
            model: "m".into(),
            data: "d".into(),
            mode: "finetune".into(),
            ratios: vec!["1:1".into(), "2:1".into()],
            policies: vec!["last".into()],
            seeds,
            settings: json!({}),
            steps: vec![],
            variants,
        }
    }

    fn collected(m: &SweepManifest, acc: impl Fn(&Variant) -> f64) -> Collected {
        Collected {
            results: m
                .variants
                .iter()
                .map(|v| {
                    let mut r = VariantResult::default();
                    r.metrics.insert("accuracy".into(), acc(v));
                    (v.clone(), r)
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn summary_says_no_significant_difference_for_noise() {
        let m = manifest(4);
        let noise = [0.01, -0.02, 0.015, -0.005];
        let c = collected(&m, |v| {
            0.9 + if v.ratio == "2:1" { noise[v.seed as usize] } else { 0.0 }
        });
        let s = summarize(&m, &c, 0.05);
        assert_eq!(s.cells.len(), 2);
        assert!((s.cells[0].metrics["accuracy"].mean - 0.9).abs() < 1e-12);
        assert!(!s.comparisons[0].significant);
        assert!(
            s.conclusions[0].contains("no significant difference"),
            "{:?}",
            s.conclusions
        );
    }

    #[test]
    fn summary_detects_a_consistent_gain_and_picks_best() {
        let m = manifest(4);
        let c = collected(&m, |v| {
            0.8 + 0.01 * v.seed as f64
                + if v.ratio == "2:1" {
                    0.05 + 0.001 * v.seed as f64
                } else {
                    0.0
                }
        });
        let s = summarize(&m, &c, 0.05);
        let cmp = &s.comparisons[0];
        assert!(cmp.significant && cmp.p_value.unwrap() < 0.01, "{cmp:?}");
        assert!(s.conclusions[0].contains("significantly better"), "{:?}", s.conclusions);
        assert_eq!((s.best[0].ratio.as_str(), s.best[0].policy.as_str()), ("2:1", "last"));
    }

    #[test]
    fn summary_with_one_seed_refuses_to_test() {
        let m = manifest(1);
        let c = collected(&m, |v| if v.ratio == "2:1" { 0.95 } else { 0.9 });
        let s = summarize(&m, &c, 0.05);
        assert!(s.comparisons[0].p_value.is_none());
        assert!(s.conclusions[0].contains("no test possible"), "{:?}", s.conclusions);
    }
}
