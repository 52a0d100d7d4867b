//! From typed per-variant results ([`super::collect`]) to the sweep's summary: per-cell mean ± std over seeds,
//! paired tests against 1:1 at two levels (per test sample pooled over seeds — McNemar and a paired bootstrap —
//! and per seed), interleaved latency ratios with a CI, accuracy at each pipeline stage, richness means over the
//! layers every variant shares, the best cell per metric, and the sentences the report leads with.

use std::collections::{BTreeMap, BTreeSet};

use reports::schema::richness::LayerKind;
use reports::schema::sweep::{
    Best, CellSummary, CommonLayers, Comparison, LatencyRatio, MetricStats, SampleTest, Stage, StageAccuracy,
    SweepManifest, SweepSummary, Variant,
};

use super::collect::{Collected, LAYER_METRICS, VariantResult, higher_is_better};
use super::stats::{holm, mean_std, paired_t_test};
use crate::analysis::latency::paired_ratio;
use crate::analysis::stats::pooled_comparison;

pub use super::collect::collect;

/// Bootstrap resamples and seed of the pooled per-sample interval and of the pooled latency ratio.
pub const RESAMPLES: usize = 2000;
pub const BOOTSTRAP_SEED: u64 = 0;
pub const CI_LEVEL: f64 = 0.95;

/// (ratio, policy) of the baseline cell.
fn is_baseline(ratio: &str) -> bool {
    ratio == "1:1"
}

/// (ratio, policy) in manifest order.
fn cells(manifest: &SweepManifest) -> Vec<(String, String)> {
    let mut cells: Vec<(String, String)> = Vec::new();
    for v in &manifest.variants {
        let k = (v.ratio.clone(), v.policy.clone());
        if !cells.contains(&k) {
            cells.push(k);
        }
    }
    cells
}

fn in_cell<'a>(
    c: &'a Collected,
    ratio: &'a str,
    policy: &'a str,
) -> impl Iterator<Item = &'a (Variant, VariantResult)> {
    c.results
        .iter()
        .filter(move |(v, _)| v.ratio == ratio && v.policy == policy)
}

/// The layers every analysed variant has (by node name, in the first analysed variant's order). Conversion
/// removes activations and renames nothing, so these are the block outputs and the activations every policy kept.
pub fn common_layers(c: &Collected) -> Option<CommonLayers> {
    let analysed: Vec<&(Variant, VariantResult)> = c.results.iter().filter(|(_, r)| !r.layers.is_empty()).collect();
    let (_, first) = analysed.first()?;
    let mut names: Vec<String> = first.layers.iter().map(|l| l.name.clone()).collect();
    for (_, r) in &analysed[1..] {
        let have: BTreeSet<&str> = r.layers.iter().map(|l| l.name.as_str()).collect();
        names.retain(|n| have.contains(n.as_str()));
    }
    let kinds = names
        .iter()
        .map(|n| {
            first
                .layers
                .iter()
                .find(|l| &l.name == n)
                .and_then(|l| l.kind)
                .map_or("other", LayerKind::as_str)
                .to_string()
        })
        .collect();
    let mut per_cell: Vec<(String, String, usize)> = Vec::new();
    for (v, r) in &analysed {
        if !per_cell.iter().any(|(a, b, _)| a == &v.ratio && b == &v.policy) {
            per_cell.push((v.ratio.clone(), v.policy.clone(), r.layers.len()));
        }
    }
    Some(CommonLayers { names, kinds, per_cell })
}

/// A variant's scalar metrics plus its richness means over `common` layers.
fn metrics_of(r: &VariantResult, common: Option<&CommonLayers>) -> BTreeMap<String, f64> {
    let mut m = r.metrics.clone();
    let Some(common) = common.filter(|c| !c.names.is_empty()) else {
        return m;
    };
    for (name, _, get) in LAYER_METRICS {
        let xs: Vec<f64> = r
            .layers
            .iter()
            .filter(|l| common.names.contains(&l.name))
            .filter_map(get)
            .filter(|x| x.is_finite())
            .collect();
        if !xs.is_empty() {
            m.insert(format!("mean_{name}"), xs.iter().sum::<f64>() / xs.len() as f64);
        }
    }
    m
}

/// Aggregate over seeds, compare with 1:1 per sample and per seed, and say what the data support.
pub fn summarize(manifest: &SweepManifest, collected: &Collected, alpha: f64) -> SweepSummary {
    let cells = cells(manifest);
    let common = common_layers(collected);
    let metrics: Vec<(&Variant, BTreeMap<String, f64>)> = collected
        .results
        .iter()
        .map(|(v, r)| (v, metrics_of(r, common.as_ref())))
        .collect();
    let per_seed = |ratio: &str, policy: &str, metric: &str| -> BTreeMap<u64, f64> {
        metrics
            .iter()
            .filter(|(v, _)| v.ratio == ratio && v.policy == policy)
            .filter_map(|(v, m)| m.get(metric).map(|x| (v.seed, *x)))
            .collect()
    };
    let names: BTreeSet<String> = metrics.iter().flat_map(|(_, m)| m.keys().cloned()).collect();

    let cell_summaries = cells
        .iter()
        .map(|(ratio, policy)| {
            let stats = names
                .iter()
                .filter_map(|m| {
                    let vals: Vec<f64> = per_seed(ratio, policy, m).into_values().collect();
                    (!vals.is_empty()).then(|| (m.clone(), stats_of(vals)))
                })
                .collect();
            let done: Vec<u64> = metrics
                .iter()
                .filter(|(v, m)| &v.ratio == ratio && &v.policy == policy && !m.is_empty())
                .map(|(v, _)| v.seed)
                .collect();
            CellSummary {
                ratio: ratio.clone(),
                policy: policy.clone(),
                metrics: stats,
                missing_seeds: (0..manifest.seeds).filter(|s| !done.contains(s)).collect(),
            }
        })
        .collect::<Vec<_>>();

    let comparisons = seed_comparisons(&cells, &names, &per_seed, alpha);
    let sample_tests = sample_tests(&cells, collected, alpha);
    let latency_ratios = latency_ratios(&cells, collected);
    let stages = stage_accuracies(&cells, collected);
    let best = best_cells(&cell_summaries, &names);
    let conclusions = conclude(&Evidence {
        comparisons: &comparisons,
        sample_tests: &sample_tests,
        latency_ratios: &latency_ratios,
        stages: &stages,
        cells: &cell_summaries,
        common: common.as_ref(),
        seeds: manifest.seeds,
        alpha,
    });
    SweepSummary {
        sweep_hash: manifest.sweep_hash.clone(),
        model: manifest.model.clone(),
        data: manifest.data.clone(),
        alpha,
        cells: cell_summaries,
        comparisons,
        sample_tests,
        latency_ratios,
        stages,
        common_layers: common,
        best,
        conclusions,
        steps_ok: collected.ok,
        steps_failed: collected.failed,
        steps_missing: collected.missing,
    }
}

fn stats_of(values: Vec<f64>) -> MetricStats {
    let (mean, std) = mean_std(&values);
    MetricStats {
        mean,
        std,
        n: values.len(),
        values,
    }
}

/// Architecture counts: reported, never tested or ranked.
fn structural(m: &str) -> bool {
    matches!(m, "params" | "macs" | "relus")
}

/// Paired by seed against the 1:1 cell; Holm-corrected within each metric's family of comparisons.
fn seed_comparisons(
    cells: &[(String, String)],
    names: &BTreeSet<String>,
    per_seed: &dyn Fn(&str, &str, &str) -> BTreeMap<u64, f64>,
    alpha: f64,
) -> Vec<Comparison> {
    let mut out = Vec::new();
    for m in names.iter().filter(|m| !structural(m)) {
        let base = per_seed("1:1", "none", m);
        let mut fam = Vec::new();
        for (ratio, policy) in cells.iter().filter(|(r, _)| !is_baseline(r)) {
            let d: Vec<f64> = per_seed(ratio, policy, m)
                .iter()
                .filter_map(|(s, x)| base.get(s).map(|b| x - b))
                .collect();
            if d.is_empty() {
                continue;
            }
            fam.push(Comparison {
                ratio: ratio.clone(),
                policy: policy.clone(),
                metric: m.clone(),
                mean_diff: d.iter().sum::<f64>() / d.len() as f64,
                n_pairs: d.len(),
                test: "paired t-test over seeds (two-sided), Holm-corrected per metric".into(),
                p_value: paired_t_test(&d).map(|(_, p)| p),
                significant: false,
            });
        }
        let idx: Vec<usize> = (0..fam.len()).filter(|&i| fam[i].p_value.is_some()).collect();
        let adj = holm(&idx.iter().map(|&i| fam[i].p_value.unwrap_or(1.0)).collect::<Vec<_>>());
        for (k, &i) in idx.iter().enumerate() {
            fam[i].p_value = Some(adj[k]);
            fam[i].significant = adj[k] < alpha;
        }
        out.extend(fam);
    }
    out
}

/// Per-sample accuracy tests of each cell against 1:1, pooling the seeds whose two evaluations scored the same
/// samples; Holm-corrected over the cells.
fn sample_tests(cells: &[(String, String)], c: &Collected, alpha: f64) -> Vec<SampleTest> {
    let base: BTreeMap<u64, &super::collect::PerSample> = in_cell(c, "1:1", "none")
        .filter_map(|(v, r)| r.per_sample.as_ref().map(|p| (v.seed, p)))
        .collect();
    let mut out = Vec::new();
    for (ratio, policy) in cells.iter().filter(|(r, _)| !is_baseline(r)) {
        let mut seeds = Vec::new();
        let mut runs: Vec<(&[bool], &[bool])> = Vec::new();
        for (v, r) in in_cell(c, ratio, policy) {
            let (Some(p), Some(b)) = (&r.per_sample, base.get(&v.seed)) else {
                continue;
            };
            if p.data_sha256 == b.data_sha256 && p.indices == b.indices {
                seeds.push(v.seed);
                runs.push((&b.correct, &p.correct));
            }
        }
        let Some(pc) = pooled_comparison(&runs, RESAMPLES, CI_LEVEL, BOOTSTRAP_SEED) else {
            continue;
        };
        out.push(SampleTest {
            ratio: ratio.clone(),
            policy: policy.clone(),
            seeds,
            samples: pc.samples,
            baseline_only_correct: pc.mcnemar.only_first,
            model_only_correct: pc.mcnemar.only_second,
            mcnemar_p: pc.mcnemar.p_value,
            p_adjusted: pc.mcnemar.p_value,
            diff: pc.ci.diff,
            ci_low: pc.ci.low,
            ci_high: pc.ci.high,
            ci_level: pc.ci.level,
            resamples: pc.ci.resamples,
            bootstrap_seed: pc.ci.seed,
            significant: false,
        });
    }
    let adj = holm(&out.iter().map(|t| t.mcnemar_p).collect::<Vec<_>>());
    for (t, p) in out.iter_mut().zip(adj) {
        t.p_adjusted = p;
        t.significant = p < alpha;
    }
    out
}

/// Pooled interleaved latency ratios of every cell (1:1 included: its ratio against its own architecture shows
/// the measurement's noise floor), per bench group.
fn latency_ratios(cells: &[(String, String)], c: &Collected) -> Vec<LatencyRatio> {
    let mut out = Vec::new();
    for (ratio, policy) in cells {
        let mut groups: Vec<(usize, usize)> = in_cell(c, ratio, policy)
            .flat_map(|(_, r)| r.latency.iter().map(|l| (l.batch, l.threads)))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for (batch, threads) in groups {
            // Every seed's iterations, pooled in pairs: (variant, reference) stay aligned.
            let (mut seeds, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
            for (v, r) in in_cell(c, ratio, policy) {
                for l in r.latency.iter().filter(|l| (l.batch, l.threads) == (batch, threads)) {
                    seeds.push(v.seed);
                    a.extend(&l.variant_ms);
                    b.extend(&l.reference_ms);
                }
            }
            let Some(q) = paired_ratio(&a, &b, CI_LEVEL, RESAMPLES, BOOTSTRAP_SEED) else {
                continue;
            };
            out.push(LatencyRatio {
                ratio: ratio.clone(),
                policy: policy.clone(),
                batch,
                threads,
                seeds,
                pairs: q.n,
                median: q.median,
                ci_low: q.ci_low,
                ci_high: q.ci_high,
                ci_level: q.level,
                resamples: q.resamples,
            });
        }
    }
    out
}

/// Accuracy per cell and stage over seeds. The source stage is the 1:1 cell's converted model: a 1:1 conversion
/// writes the source unchanged.
fn stage_accuracies(cells: &[(String, String)], c: &Collected) -> Vec<StageAccuracy> {
    let mut out = Vec::new();
    for (ratio, policy) in cells {
        for stage in Stage::ALL {
            let want = if stage == Stage::Source {
                Stage::Converted
            } else {
                stage
            };
            if stage == Stage::Source && !is_baseline(ratio) {
                continue;
            }
            let vals: Vec<(f64, &str)> = in_cell(c, ratio, policy)
                .filter_map(|(_, r)| r.stages.get(&want).map(|s| (s.accuracy, s.source.as_str())))
                .collect();
            let Some(&(_, source)) = vals.first() else { continue };
            out.push(StageAccuracy {
                ratio: ratio.clone(),
                policy: policy.clone(),
                stage,
                source: source.to_string(),
                accuracy: stats_of(vals.iter().map(|v| v.0).collect()),
            });
        }
    }
    out
}

fn best_cells(cells: &[CellSummary], names: &BTreeSet<String>) -> Vec<Best> {
    let mut best = Vec::new();
    for m in names.iter().filter(|m| !structural(m)) {
        let Some(higher) = higher_is_better(m) else { continue };
        let means: Vec<(&CellSummary, f64)> = cells
            .iter()
            .filter_map(|c| c.metrics.get(m).map(|s| (c, s.mean)))
            .filter(|(_, x)| x.is_finite())
            .collect();
        // A tie (every cell the same, e.g. no dead units anywhere) has no best cell.
        if means.windows(2).all(|w| w[0].1 == w[1].1) {
            continue;
        }
        let pick = means.into_iter().max_by(|a, b| {
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
    best
}

/// Everything the sentences draw on.
pub struct Evidence<'a> {
    pub comparisons: &'a [Comparison],
    pub sample_tests: &'a [SampleTest],
    pub latency_ratios: &'a [LatencyRatio],
    pub stages: &'a [StageAccuracy],
    pub cells: &'a [CellSummary],
    pub common: Option<&'a CommonLayers>,
    pub seeds: u64,
    pub alpha: f64,
}

fn points(d: f64) -> String {
    format!("{:+.2} points", d * 100.0)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Plain sentences, headline first: accuracy (per sample, with the seed-level test alongside), latency (paired
/// ratio with its CI), what conversion cost and fine-tuning bought back, and richness over the shared layers.
pub fn conclude(e: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    accuracy_sentences(e, &mut out);
    latency_sentences(e, &mut out);
    stage_sentences(e, &mut out);
    richness_sentences(e, &mut out);
    if out.is_empty() {
        out.push(
            "No variant finished both its own pipeline and the 1:1 baseline's for any seed: nothing to compare yet."
                .into(),
        );
    }
    out
}

/// `0.042`, or `3.1e-12` where three decimals would print zero.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn seed_level(e: &Evidence, ratio: &str, policy: &str, metric: &str) -> Option<String> {
    let c = e
        .comparisons
        .iter()
        .find(|c| c.ratio == ratio && c.policy == policy && c.metric == metric)?;
    Some(match c.p_value {
        Some(p) => format!(
            "seed-level paired t-test over {}: {} (adjusted p = {})",
            plural(c.n_pairs, "seed"),
            if c.significant {
                "significant"
            } else {
                "not significant"
            },
            fmt_p(p)
        ),
        None => format!(
            "no seed-level test (it needs 2 or more paired seeds whose differences vary; have {})",
            c.n_pairs
        ),
    })
}

fn accuracy_sentences(e: &Evidence, out: &mut Vec<String>) {
    for t in e.sample_tests {
        let verdict = if t.significant {
            if t.diff > 0.0 {
                "significantly more accurate than"
            } else {
                "significantly less accurate than"
            }
        } else {
            "not significantly different from"
        };
        let mut s = format!(
            "accuracy: {} ({}) is {verdict} 1:1: {} (mean over {}; {:.0}% paired bootstrap CI [{:+.2}, {:+.2}] points \
             over {} test samples); McNemar exact p = {} on {} vs {} samples only one of the two got right, pooled \
             over seeds (Holm-adjusted p = {}, α = {})",
            t.ratio,
            t.policy,
            points(t.diff),
            plural(t.seeds.len(), "seed"),
            t.ci_level * 100.0,
            t.ci_low * 100.0,
            t.ci_high * 100.0,
            t.samples,
            fmt_p(t.mcnemar_p),
            t.model_only_correct,
            t.baseline_only_correct,
            fmt_p(t.p_adjusted),
            e.alpha
        );
        if let Some(seed) = seed_level(e, &t.ratio, &t.policy, "accuracy") {
            s.push_str(&format!("; {seed}"));
        }
        s.push('.');
        out.push(s);
    }
    // Cells without per-sample records fall back to the seed-level test alone.
    let tested: BTreeSet<(&str, &str)> = e
        .sample_tests
        .iter()
        .map(|t| (t.ratio.as_str(), t.policy.as_str()))
        .collect();
    let rest: Vec<&Comparison> = e
        .comparisons
        .iter()
        .filter(|c| c.metric == "accuracy" && !tested.contains(&(c.ratio.as_str(), c.policy.as_str())))
        .collect();
    for c in rest {
        out.push(match c.p_value {
            None => format!(
                "accuracy: {} ({}) vs 1:1: {} (no per-sample records; no seed-level test possible with {} per \
                 variant): descriptive only.",
                c.ratio,
                c.policy,
                points(c.mean_diff),
                plural(e.seeds as usize, "seed")
            ),
            Some(p) => format!(
                "accuracy: {} ({}) vs 1:1: {} over {} (no per-sample records; seed-level paired t-test, adjusted p \
                 = {}: {}).",
                c.ratio,
                c.policy,
                points(c.mean_diff),
                plural(c.n_pairs, "paired seed"),
                fmt_p(p),
                if c.significant {
                    "significant"
                } else {
                    "not significant"
                }
            ),
        });
    }
}

fn latency_sentences(e: &Evidence, out: &mut Vec<String>) {
    // The headline group: batch 1 on one thread when measured, else the first group.
    let Some(&(batch, threads)) = e
        .latency_ratios
        .iter()
        .map(|l| (l.batch, l.threads))
        .collect::<BTreeSet<_>>()
        .iter()
        .min_by_key(|&&(b, t)| ((b, t) != (1, 1), b, t))
    else {
        return;
    };
    let group: Vec<&LatencyRatio> = e
        .latency_ratios
        .iter()
        .filter(|l| (l.batch, l.threads) == (batch, threads))
        .collect();
    let floor = group.iter().find(|l| is_baseline(&l.ratio));
    for l in group.iter().filter(|l| !is_baseline(&l.ratio)) {
        let verdict = latency_verdict((l.ci_low, l.ci_high), floor.map(|f| (f.ci_low, f.ci_high)));
        let mut s = format!(
            "latency (batch {batch}, {}): {} ({}) is {verdict} 1:1: {:.3}× its latency (median of {} interleaved \
             paired iterations over {}, {:.0}% CI [{:.3}, {:.3}])",
            plural(threads.max(1), "thread"),
            l.ratio,
            l.policy,
            l.median,
            l.pairs,
            plural(l.seeds.len(), "seed"),
            l.ci_level * 100.0,
            l.ci_low,
            l.ci_high
        );
        if let Some(f) = floor {
            s.push_str(&format!(
                "; the 1:1 model against the same reference gives {:.3}× [{:.3}, {:.3}], the noise floor",
                f.median, f.ci_low, f.ci_high
            ));
        }
        s.push('.');
        out.push(s);
    }
}

/// A variant is faster or slower only when its CI excludes 1 and does not overlap the CI of the 1:1 model timed
/// against the same reference (the noise floor): a difference the floor also shows is the machine, not the model.
fn latency_verdict(ci: (f64, f64), floor: Option<(f64, f64)>) -> &'static str {
    let beyond_floor = floor.is_none_or(|(lo, hi)| ci.1 < lo || ci.0 > hi);
    if ci.1 < 1.0 && beyond_floor {
        "faster than"
    } else if ci.0 > 1.0 && beyond_floor {
        "slower than"
    } else {
        "not measurably different from"
    }
}

fn stage_sentences(e: &Evidence, out: &mut Vec<String>) {
    let get = |ratio: &str, policy: &str, stage: Stage| {
        e.stages
            .iter()
            .find(|s| s.ratio == ratio && s.policy == policy && s.stage == stage)
            .map(|s| s.accuracy.mean)
    };
    let Some(source) = e
        .stages
        .iter()
        .find(|s| s.stage == Stage::Source)
        .map(|s| s.accuracy.mean)
    else {
        return;
    };
    for c in e.cells.iter().filter(|c| !is_baseline(&c.ratio)) {
        let Some(conv) = get(&c.ratio, &c.policy, Stage::Converted) else {
            continue;
        };
        let mut s = format!(
            "stages: {} ({}) — conversion alone cost {} (source {} → converted {})",
            c.ratio,
            c.policy,
            points(conv - source),
            pct(source),
            pct(conv)
        );
        let mut last = conv;
        if let Some(cal) = get(&c.ratio, &c.policy, Stage::Calibrated) {
            s.push_str(&format!("; calibration gave {} ({})", points(cal - last), pct(cal)));
            last = cal;
        }
        if let Some(ft) = get(&c.ratio, &c.policy, Stage::FineTuned) {
            let base_ft = get("1:1", "none", Stage::FineTuned);
            s.push_str(&format!(
                "; fine-tuning bought back {} ({}{})",
                points(ft - last),
                pct(ft),
                base_ft
                    .map(|b| format!(", against {} for the 1:1 model fine-tuned the same way", pct(b)))
                    .unwrap_or_default()
            ));
        }
        s.push('.');
        out.push(s);
    }
}

fn richness_sentences(e: &Evidence, out: &mut Vec<String>) {
    let Some(common) = e.common.filter(|c| !c.names.is_empty()) else {
        return;
    };
    let m = "mean_effective_rank";
    let Some(base) = e
        .cells
        .iter()
        .find(|c| is_baseline(&c.ratio))
        .and_then(|c| c.metrics.get(m))
    else {
        return;
    };
    let joins = common.kinds.iter().filter(|k| *k == "join").count();
    let parts: Vec<String> = e
        .cells
        .iter()
        .filter(|c| !is_baseline(&c.ratio))
        .filter_map(|c| {
            let x = c.metrics.get(m)?;
            let p = e
                .comparisons
                .iter()
                .find(|k| k.ratio == c.ratio && k.policy == c.policy && k.metric == m)
                .and_then(|k| k.p_value);
            Some(format!(
                "{} ({}) {:.2}{}",
                c.ratio,
                c.policy,
                x.mean,
                p.map(|p| format!(" (seed-level adjusted p = {})", fmt_p(p)))
                    .unwrap_or_default()
            ))
        })
        .collect();
    if parts.is_empty() {
        return;
    }
    out.push(format!(
        "richness: mean effective rank over the {} layers every variant keeps ({} block outputs, {} activations): \
         1:1 {:.2}, {}.",
        common.names.len(),
        joins,
        common.names.len() - joins,
        base.mean,
        parts.join(", ")
    ));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sweep::collect::{LatencyPairs, PerSample, StageValue};
    use reports::schema::richness::LayerMetrics;
    use serde_json::json;

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

    fn collected(m: &SweepManifest, f: impl Fn(&Variant, &mut VariantResult)) -> Collected {
        Collected {
            results: m
                .variants
                .iter()
                .map(|v| {
                    let mut r = VariantResult::default();
                    f(v, &mut r);
                    (v.clone(), r)
                })
                .collect(),
            ..Default::default()
        }
    }

    fn acc(f: impl Fn(&Variant) -> f64) -> impl Fn(&Variant, &mut VariantResult) {
        move |v, r| {
            r.metrics.insert("accuracy".into(), f(v));
        }
    }

    #[test]
    fn summary_says_no_significant_difference_for_noise() {
        let m = manifest(4);
        let noise = [0.01, -0.02, 0.015, -0.005];
        let c = collected(
            &m,
            acc(|v| 0.9 + if v.ratio == "2:1" { noise[v.seed as usize] } else { 0.0 }),
        );
        let s = summarize(&m, &c, 0.05);
        assert_eq!(s.cells.len(), 2);
        assert!((s.cells[0].metrics["accuracy"].mean - 0.9).abs() < 1e-12);
        assert!(!s.comparisons[0].significant);
        assert!(s.conclusions[0].contains("not significant"), "{:?}", s.conclusions);
    }

    #[test]
    fn summary_detects_a_consistent_gain_and_picks_best() {
        let m = manifest(4);
        let c = collected(
            &m,
            acc(|v| {
                0.8 + 0.01 * v.seed as f64
                    + if v.ratio == "2:1" {
                        0.05 + 0.001 * v.seed as f64
                    } else {
                        0.0
                    }
            }),
        );
        let s = summarize(&m, &c, 0.05);
        let cmp = &s.comparisons[0];
        assert!(cmp.significant && cmp.p_value.unwrap() < 0.01, "{cmp:?}");
        assert!(
            s.conclusions[0].contains("seed-level paired t-test, adjusted p = ")
                && s.conclusions[0].ends_with(": significant)."),
            "{:?}",
            s.conclusions
        );
        assert_eq!((s.best[0].ratio.as_str(), s.best[0].policy.as_str()), ("2:1", "last"));
    }

    #[test]
    fn a_tie_has_no_best_cell() {
        let m = manifest(2);
        let c = collected(&m, |v, r| {
            r.metrics
                .insert("accuracy".into(), if v.ratio == "2:1" { 0.8 } else { 0.9 });
            r.metrics.insert("mean_dead_fraction".into(), 0.0);
        });
        let s = summarize(&m, &c, 0.05);
        let best: Vec<&str> = s.best.iter().map(|b| b.metric.as_str()).collect();
        assert_eq!(best, ["accuracy"]);
        assert_eq!(s.best[0].ratio, "1:1");
    }

    #[test]
    fn summary_with_one_seed_refuses_to_test() {
        let m = manifest(1);
        let c = collected(&m, acc(|v| if v.ratio == "2:1" { 0.95 } else { 0.9 }));
        let s = summarize(&m, &c, 0.05);
        assert!(s.comparisons[0].p_value.is_none());
        assert!(s.conclusions[0].contains("descriptive only"), "{:?}", s.conclusions);
    }

    /// Per-sample outcomes: `n` samples, the 1:1 model right on the first `base` and the variant on the first `own`.
    fn per_sample(n: usize, right: usize) -> PerSample {
        PerSample {
            data_sha256: "d".into(),
            indices: (0..n).collect(),
            correct: (0..n).map(|i| i < right).collect(),
        }
    }

    #[test]
    fn per_sample_test_pools_seeds_and_leads_the_conclusions() {
        // Two seeds: 1:1 right on 800 of 1000, 2:1 on 850 (the extra 50 are discordant in its favour): McNemar on
        // 0 vs 100 pooled discordant samples is tiny although two seeds give no seed-level variance to test.
        let m = manifest(2);
        let c = collected(&m, |v, r| {
            let right = if v.ratio == "2:1" { 850 } else { 800 };
            r.per_sample = Some(per_sample(1000, right));
            r.metrics.insert("accuracy".into(), right as f64 / 1000.0);
        });
        let s = summarize(&m, &c, 0.05);
        let t = &s.sample_tests[0];
        assert_eq!((t.seeds.clone(), t.samples), (vec![0, 1], 1000));
        assert_eq!((t.baseline_only_correct, t.model_only_correct), (0, 100));
        assert!(t.significant && t.mcnemar_p < 1e-20, "{t:?}");
        // Each sample's outcome difference is 1 on 50 of 1000 samples (the same in both seeds): the normal interval
        // is 0.05 ± 1.96·√(0.05·0.95/1000) = [0.0365, 0.0635]; the bootstrap's steps are 1/1000.
        assert!((t.diff - 0.05).abs() < 1e-12, "{t:?}");
        assert!(
            (t.ci_low - 0.0365).abs() < 0.002 && (t.ci_high - 0.0635).abs() < 0.002,
            "{t:?}"
        );
        assert!(
            s.comparisons[0].p_value.is_none(),
            "identical seed differences: no t-test"
        );
        let first = &s.conclusions[0];
        assert!(
            first.starts_with("accuracy: 2:1 (last) is significantly more accurate than 1:1: +5.00 points"),
            "{first}"
        );
        assert!(
            first.contains("CI [+3.70, +6.40] points over 1000 test samples"),
            "{first}"
        );
        assert!(
            first.contains("McNemar exact p = 1.6e-30 on 100 vs 0 samples only one of the two got right"),
            "{first}"
        );
        assert!(
            first.ends_with("; no seed-level test (it needs 2 or more paired seeds whose differences vary; have 2)."),
            "{first}"
        );

        // A seed whose evaluation scored other samples is not paired.
        let c = collected(&m, |v, r| {
            let mut p = per_sample(1000, 800);
            if v.ratio == "2:1" && v.seed == 1 {
                p.indices[0] = 5000;
            }
            r.per_sample = Some(p);
        });
        assert_eq!(summarize(&m, &c, 0.05).sample_tests[0].seeds, vec![0]);
    }

    #[test]
    fn latency_ratio_pools_interleaved_pairs_and_says_its_ci() {
        let m = manifest(2);
        let c = collected(&m, |v, r| {
            let f = if v.ratio == "2:1" { 0.9 } else { 1.0 };
            // Drift shared by both models within an iteration cancels in the ratio.
            let reference: Vec<f64> = (0..50).map(|i| 1.0 + 0.5 * (i as f64 / 7.0).sin()).collect();
            r.latency.push(LatencyPairs {
                batch: 1,
                threads: 1,
                variant_ms: reference
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x * f * (1.0 + 0.001 * (i % 3) as f64))
                    .collect(),
                reference_ms: reference,
            });
        });
        let s = summarize(&m, &c, 0.05);
        let l = s.latency_ratios.iter().find(|l| l.ratio == "2:1").unwrap();
        assert_eq!((l.pairs, l.seeds.clone()), (100, vec![0, 1]));
        assert!((l.median - 0.9009).abs() < 0.001 && l.ci_high < 1.0, "{l:?}");
        let floor = s.latency_ratios.iter().find(|l| l.ratio == "1:1").unwrap();
        assert!((floor.median - 1.001).abs() < 0.002, "{floor:?}");
        let line = s.conclusions.iter().find(|c| c.starts_with("latency")).unwrap();
        assert!(
            line.contains("2:1 (last) is faster than 1:1: 0.901× its latency") && line.contains("95% CI [0.9"),
            "{line}"
        );
        assert!(line.contains("noise floor"), "{line}");
    }

    #[test]
    fn a_latency_difference_the_noise_floor_also_shows_is_not_claimed() {
        assert_eq!(latency_verdict((0.89, 0.91), Some((0.99, 1.01))), "faster than");
        assert_eq!(latency_verdict((1.05, 1.08), None), "slower than");
        // The demo's case: CI below 1, but the 1:1 model against the same reference is as far below.
        assert_eq!(
            latency_verdict((0.989, 0.999), Some((0.989, 1.000))),
            "not measurably different from"
        );
        assert_eq!(latency_verdict((0.98, 1.02), None), "not measurably different from");
    }

    /// A layer with only its name, kind, relative depth (`None` for records from before it) and effective rank.
    pub(crate) fn layer(name: &str, kind: LayerKind, relative_depth: Option<f64>, rank: f64) -> LayerMetrics {
        LayerMetrics {
            name: name.into(),
            op: "Relu".into(),
            output: name.into(),
            depth: 0,
            kind: Some(kind),
            block: None,
            stage: None,
            relative_depth,
            channels: 4,
            spatial: 1,
            samples: 10,
            dead_fraction: None,
            sparsity: None,
            negative_mass: None,
            distinct_patterns: None,
            pattern_entropy_bits: None,
            position_patterns: None,
            position_pattern_entropy_bits: None,
            effective_rank: Some(rank),
            participation_ratio: None,
            spatial_effective_rank: None,
            spatial_participation_ratio: None,
            probe_accuracy: None,
        }
    }

    #[test]
    fn richness_means_use_only_the_layers_every_variant_has() {
        // 1:1 has a removed-in-2:1 activation with a high rank; averaging it in would flatter 1:1.
        let m = manifest(1);
        let c = collected(&m, |v, r| {
            r.layers = vec![
                layer("stem", LayerKind::Activation, None, 2.0),
                layer("add1", LayerKind::Join, None, 4.0),
            ];
            if v.ratio == "1:1" {
                r.layers.insert(1, layer("relu1", LayerKind::Activation, None, 30.0));
            }
        });
        let s = summarize(&m, &c, 0.05);
        let common = s.common_layers.as_ref().unwrap();
        assert_eq!(common.names, ["stem", "add1"]);
        assert_eq!(common.kinds, ["activation", "join"]);
        assert_eq!(
            common.per_cell,
            [("1:1".into(), "none".into(), 3), ("2:1".into(), "last".into(), 2)]
        );
        assert_eq!(s.cells[0].metrics["mean_effective_rank"].mean, 3.0);
        let line = s.conclusions.iter().find(|c| c.starts_with("richness")).unwrap();
        assert!(
            line.contains(
                "over the 2 layers every variant keeps (1 block outputs, 1 activations): 1:1 3.00, 2:1 (last) 3.00"
            ),
            "{line}"
        );
    }

    #[test]
    fn stages_say_what_conversion_cost_and_fine_tuning_bought_back() {
        let m = manifest(1);
        let c = collected(&m, |v, r| {
            let (conv, ft) = if v.ratio == "1:1" { (0.90, 0.91) } else { (0.40, 0.88) };
            for (stage, a) in [(Stage::Converted, conv), (Stage::FineTuned, ft)] {
                r.stages.insert(
                    stage,
                    StageValue {
                        accuracy: a,
                        source: "test".into(),
                    },
                );
            }
        });
        let s = summarize(&m, &c, 0.05);
        let stages: Vec<(&str, Stage)> = s.stages.iter().map(|x| (x.ratio.as_str(), x.stage)).collect();
        assert_eq!(
            stages,
            [
                ("1:1", Stage::Source),
                ("1:1", Stage::Converted),
                ("1:1", Stage::FineTuned),
                ("2:1", Stage::Converted),
                ("2:1", Stage::FineTuned)
            ]
        );
        let line = s.conclusions.iter().find(|c| c.starts_with("stages")).unwrap();
        assert_eq!(
            line,
            "stages: 2:1 (last) — conversion alone cost -50.00 points (source 90.00% → converted 40.00%); fine-tuning \
             bought back +48.00 points (88.00%, against 91.00% for the 1:1 model fine-tuned the same way)."
        );
    }
}
