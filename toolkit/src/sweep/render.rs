//! Build the report of a run directory: recompute the plan from the manifest, read the trusted records (all
//! shards), summarise, and write summary.json, report/report.md, report/index.html and report/figures/*.
//!
//! [`build`] assembles the sections in reading order; each section and each figure has its own function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use converters::ir::model::write_atomic;
use reports::doc::{Block, FigureItem, Report, Section, Table, png_path, svg_path};
use reports::plot::{Bar, BarChart, Figure, HeatMap, LineChart, LineStyle, Marker, Point, Series};
use reports::schema::richness::LayerMetrics;
use reports::schema::sweep::{CellSummary, Stage, SweepManifest, SweepSummary, Variant};
use reports::schema::train::StepRecord;
use reports::schema::{Record, now_rfc3339};

use super::collect::{Collected, LAYER_METRICS, LayerGetter, VariantResult, latency_group};
use super::spec::{Ratio, SweepSpec};
use super::summary::{collect, fmt_p, summarize};
use super::{plan, provenance, store};

pub struct ReportFiles {
    pub html: PathBuf,
    pub markdown: PathBuf,
    pub summary: PathBuf,
    pub conclusions: Vec<String>,
    pub untrusted: Vec<String>,
}

pub fn write_report(run_dir: &Path, alpha: f64) -> Result<ReportFiles> {
    let run_dir = std::path::absolute(run_dir).with_context(|| format!("resolving {}", run_dir.display()))?;
    let (mrec, manifest) = store::read_manifest(&run_dir)?;
    let spec: SweepSpec = serde_json::from_value(manifest.settings.clone()).with_context(|| {
        format!(
            "{}: settings do not describe a sweep this build understands",
            run_dir.join(store::MANIFEST).display()
        )
    })?;
    let plans = plan::plan(&spec, &run_dir)?;
    let collected = collect(&run_dir, &manifest, &plans);
    let summary = summarize(&manifest, &collected, alpha);

    let summary_path = run_dir.join("summary.json");
    let mut srec = Record::new(
        &summary,
        std::env::args().collect(),
        provenance::current(),
        now_rfc3339(),
    )?;
    srec.inputs
        .push(store::file_ref(&run_dir, &run_dir.join(store::MANIFEST))?);
    write_atomic(&summary_path, srec.to_json_pretty().as_bytes())?;

    let report = build(&mrec, &manifest, &summary, &collected);
    let out = run_dir.join("report");
    let figdir = out.join(reports::doc::FIGURE_DIR);
    std::fs::create_dir_all(&figdir).with_context(|| format!("creating {}", figdir.display()))?;
    for f in report.figures() {
        let svg = reports::plot::render_svg(&f.figure).with_context(|| format!("figure {}", f.stem))?;
        write_atomic(&out.join(svg_path(&f.stem)), svg.as_bytes())?;
        let png = reports::plot::render_png(&f.figure).with_context(|| format!("figure {}", f.stem))?;
        write_atomic(&out.join(png_path(&f.stem)), &png)?;
    }
    let md = out.join("report.md");
    write_atomic(&md, reports::markdown::render(&report).as_bytes())?;
    let html = out.join("index.html");
    write_atomic(&html, reports::html::render(&report)?.as_bytes())?;
    Ok(ReportFiles {
        html,
        markdown: md,
        summary: summary_path,
        conclusions: summary.conclusions.clone(),
        untrusted: collected.untrusted.clone(),
    })
}

fn pm(mean: f64, std: f64, n: usize, digits: usize) -> String {
    if n > 1 {
        format!("{mean:.digits$} ± {std:.digits$}")
    } else {
        format!("{mean:.digits$}")
    }
}

fn count(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn pts(d: f64) -> String {
    format!("{:+.2}", d * 100.0)
}

/// A data set path's last component (`…/digits.csv.gz` → `digits.csv.gz`) for titles; the full path is in the
/// provenance list.
fn data_label(data: &str) -> String {
    Path::new(data)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| data.to_string())
}

/// Values the steps reported, falling back to the sweep's own view.
fn joined(set: &std::collections::BTreeSet<String>, fallback: Option<&str>) -> String {
    if set.is_empty() {
        fallback.unwrap_or("not reported").to_string()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(" / ")
    }
}

fn ratio_value(r: &str) -> f64 {
    r.parse::<Ratio>().map_or(f64::NAN, Ratio::value)
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Block {
    Block::Table(Table {
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows,
    })
}

fn cell_name(ratio: &str, policy: &str) -> String {
    format!("{ratio} {policy}")
}

/// The report's content, from the summary and per-variant results.
pub fn build(mrec: &Record, m: &SweepManifest, s: &SweepSummary, c: &Collected) -> Report {
    let mut sections = vec![
        overview(mrec, m, s, c),
        summary_table(m, s),
        accuracy_tests(s),
        latency(s),
    ];
    sections.extend(stages(m, s));
    sections.extend(training(c));
    sections.extend(richness(s, c));
    if !c.untrusted.is_empty() {
        sections.push(Section {
            title: "Records not used".into(),
            blocks: vec![
                Block::Text(
                    "These records failed verification (unreadable, their files changed, or their body does not fit \
                     the command's schema) and were ignored; rerun the sweep command to redo them."
                        .into(),
                ),
                Block::List(c.untrusted.clone()),
            ],
        });
    }
    Report {
        title: format!("ratio sweep — {} on {}", s.model, data_label(&s.data)),
        sections,
    }
}

/// The conclusions, how they were tested, and where everything came from.
fn overview(mrec: &Record, m: &SweepManifest, s: &SweepSummary, c: &Collected) -> Section {
    let prov = &mrec.provenance;
    let mut facts = vec![
        format!(
            "sweep {} ({} mode, {} variants, seeds 0..{})",
            s.sweep_hash,
            m.mode,
            m.variants.len(),
            m.seeds
        ),
        format!("model {}, data {}, steps {}", m.model, m.data, m.steps.join(" → ")),
        format!(
            "tool {}, ONNX Runtime {}, device {}, machine {}",
            prov.tool_version,
            joined(&c.ort_versions, prov.ort_version.as_deref()),
            joined(&c.devices, prov.device.as_deref()),
            prov.machine.describe()
        ),
        format!("started {}, report {}", mrec.created, now_rfc3339()),
        format!(
            "steps: {} ok, {} failed, {} missing or untrusted",
            s.steps_ok, s.steps_failed, s.steps_missing
        ),
    ];
    facts.extend(
        mrec.inputs
            .iter()
            .map(|f| format!("input {} sha256 {}", f.path, f.sha256)),
    );
    Section {
        title: "What the data support".into(),
        blocks: vec![
            Block::List(s.conclusions.clone()),
            Block::Text(format!(
                "Accuracy is compared with 1:1 sample by sample: every variant is scored on the same test samples, \
                 so McNemar's exact test runs on the discordant samples pooled over seeds, and a paired bootstrap \
                 over test samples (each carrying its outcome in every seed) gives the interval of the mean \
                 difference; p-values are Holm-corrected over the variants (α = {}). The seed-level paired t-test \
                 stays alongside: it asks whether the difference holds across trainings, which two or three seeds \
                 can rarely show. Latency comes from `ratio bench` runs that interleave the 1:1 reference and the \
                 variant iteration by iteration, so drift cancels in the per-iteration ratio. Per-step provenance \
                 (exact command, versions, input/output sha256) is in each variants/<id>/<step>.json.",
                s.alpha
            )),
            Block::List(facts),
        ],
    }
}

/// The paper's table shape: model × ratio × policy → accuracy ± std, latency, size, compute, richness.
fn summary_table(m: &SweepManifest, s: &SweepSummary) -> Section {
    let shared = s.common_layers.as_ref().map_or(0, |c| c.names.len());
    let mut cols: Vec<(String, String, usize, bool)> = vec![("accuracy".into(), "top-1 accuracy".into(), 4, false)];
    let mut latency: Vec<String> = s
        .cells
        .iter()
        .flat_map(|c| c.metrics.keys())
        .filter(|k| latency_group(k).is_some())
        .cloned()
        .collect();
    latency.sort();
    latency.dedup();
    for k in latency {
        let (b, t) = latency_group(&k).unwrap_or_default();
        cols.push((k, format!("latency p50 (ms, batch {b}, {t} thr)"), 3, false));
    }
    for (k, h) in [("params", "parameters"), ("macs", "MACs"), ("relus", "ReLUs")] {
        cols.push((k.into(), h.into(), 0, true));
    }
    cols.push((
        "mean_effective_rank".into(),
        format!("mean eff. rank ({shared} shared layers)"),
        2,
        false,
    ));
    cols.push((
        "mean_dead_fraction".into(),
        format!("mean dead fraction ({shared} shared layers)"),
        3,
        false,
    ));
    let present: Vec<_> = cols
        .iter()
        .filter(|(k, ..)| s.cells.iter().any(|cl| cl.metrics.contains_key(k)))
        .collect();
    let mut headers = vec!["model".to_string(), "ratio".into(), "policy".into(), "seeds".into()];
    headers.extend(present.iter().map(|(_, h, ..)| h.clone()));
    let rows = s
        .cells
        .iter()
        .map(|cl| {
            let n = cl.metrics.values().map(|x| x.n).max().unwrap_or(0);
            let mut r = vec![
                s.model.clone(),
                cl.ratio.clone(),
                cl.policy.clone(),
                format!("{n}/{}", m.seeds),
            ];
            for (k, _, d, is_count) in &present {
                r.push(match cl.metrics.get(k) {
                    Some(x) if *is_count => count(x.mean),
                    Some(x) => pm(x.mean, x.std, x.n, *d),
                    None => "—".into(),
                });
            }
            r
        })
        .collect();
    let mut blocks = vec![Block::Table(Table { headers, rows })];
    if !s.best.is_empty() {
        blocks.push(Block::List(
            s.best
                .iter()
                .map(|b| {
                    format!(
                        "best {} ({} is better): {} {} ({:.4})",
                        b.metric, b.direction, b.ratio, b.policy, b.mean
                    )
                })
                .collect(),
        ));
    }
    let mut figs = Vec::new();
    figs.extend(accuracy_vs_ratio(m, s));
    figs.extend(latency_bars(s));
    blocks.extend(figs.into_iter().map(Block::Figure));
    Section {
        title: "Summary".into(),
        blocks,
    }
}

/// Per-sample tests pooled over seeds, then the seed-level tests of every metric.
fn accuracy_tests(s: &SweepSummary) -> Section {
    let mut blocks = Vec::new();
    if s.sample_tests.is_empty() {
        blocks.push(Block::Text(
            "No per-sample test: the evaluations hold no per-sample predictions (`ratio eval --per-sample`), or no \
             variant shares its samples with a 1:1 run of the same seed."
                .into(),
        ));
    } else {
        let rows = s
            .sample_tests
            .iter()
            .map(|t| {
                vec![
                    t.ratio.clone(),
                    t.policy.clone(),
                    t.seeds.len().to_string(),
                    t.samples.to_string(),
                    pts(t.diff),
                    format!("[{}, {}]", pts(t.ci_low), pts(t.ci_high)),
                    format!("{} / {}", t.model_only_correct, t.baseline_only_correct),
                    fmt_p(t.mcnemar_p),
                    fmt_p(t.p_adjusted),
                    if t.significant { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        blocks.push(table(
            &[
                "ratio",
                "policy",
                "seeds",
                "test samples",
                "Δ top-1 vs 1:1 (points)",
                "95% CI (paired bootstrap)",
                "only variant / only 1:1 right",
                "McNemar p",
                "Holm p",
                "significant",
            ],
            rows,
        ));
    }
    if !s.comparisons.is_empty() {
        blocks.push(Block::Text(
            "Seed-level paired t-tests of every metric (pairs = seeds with both runs; Holm-corrected per metric):"
                .into(),
        ));
        blocks.push(table(
            &[
                "ratio",
                "policy",
                "metric",
                "mean Δ vs 1:1",
                "pairs",
                "adj. p",
                "significant",
            ],
            s.comparisons
                .iter()
                .map(|x| {
                    vec![
                        x.ratio.clone(),
                        x.policy.clone(),
                        x.metric.clone(),
                        format!("{:+.4}", x.mean_diff),
                        x.n_pairs.to_string(),
                        x.p_value.map_or("n/a".into(), |p| format!("{p:.3}")),
                        if x.significant { "yes" } else { "no" }.into(),
                    ]
                })
                .collect(),
        ));
    }
    Section {
        title: "Accuracy against 1:1".into(),
        blocks,
    }
}

fn latency(s: &SweepSummary) -> Section {
    let blocks =
        if s.latency_ratios.is_empty() {
            vec![Block::Text(
                "No interleaved latency records (the bench step did not run, or ran one model only).".into(),
            )]
        } else {
            vec![
            Block::Text(
                "Latency relative to the 1:1 architecture: each `ratio bench` run interleaves the 1:1 reference and \
                 the variant (A, B, A, B); the ratio is the median of per-iteration ratios pooled over seeds, with a \
                 percentile-bootstrap CI. The 1:1 row measures the 1:1 model against the same reference: its \
                 distance from 1 is the noise floor."
                    .into(),
            ),
            table(
                &["ratio", "policy", "batch", "threads", "seeds", "paired iterations", "median ratio", "95% CI"],
                s.latency_ratios
                    .iter()
                    .map(|l| {
                        vec![
                            l.ratio.clone(),
                            l.policy.clone(),
                            l.batch.to_string(),
                            l.threads.to_string(),
                            l.seeds.len().to_string(),
                            l.pairs.to_string(),
                            format!("{:.3}", l.median),
                            format!("[{:.3}, {:.3}]", l.ci_low, l.ci_high),
                        ]
                    })
                    .collect(),
            ),
        ]
        };
    Section {
        title: "Latency".into(),
        blocks,
    }
}

/// Accuracy vs ratio: one line per policy, each starting from the shared 1:1 point.
fn accuracy_vs_ratio(m: &SweepManifest, s: &SweepSummary) -> Option<FigureItem> {
    let base = s
        .cells
        .iter()
        .find(|cl| cl.ratio == "1:1")
        .and_then(|cl| cl.metrics.get("accuracy"))?;
    let mut ticks: Vec<(f64, String)> = m.ratios.iter().map(|r| (ratio_value(r), r.clone())).collect();
    ticks.retain(|t| t.0.is_finite());
    let series: Vec<Series> = m
        .policies
        .iter()
        .map(|p| {
            let mut points = vec![Point {
                x: 1.0,
                y: base.mean,
                err: Some(base.std),
            }];
            points.extend(s.cells.iter().filter(|cl| &cl.policy == p).filter_map(|cl| {
                cl.metrics.get("accuracy").map(|a| Point {
                    x: ratio_value(&cl.ratio),
                    y: a.mean,
                    err: Some(a.std),
                })
            }));
            Series::new(p.clone(), points)
        })
        .filter(|s| s.points.iter().all(|p| p.x.is_finite()))
        .collect();
    Some(FigureItem {
        stem: "accuracy_vs_ratio".into(),
        caption: "Top-1 accuracy against the conv:ReLU ratio N/M, one line per placement policy; error bars ± 1 std \
                  over seeds."
            .into(),
        figure: Figure::Line(LineChart {
            title: format!("Accuracy vs conv:ReLU ratio — {} on {}", s.model, data_label(&s.data)),
            x_label: "conv:ReLU ratio (N/M)".into(),
            y_label: "top-1 accuracy".into(),
            x_ticks: ticks,
            series,
            markers: vec![],
        }),
    })
}

/// p50 per variant in the headline bench group (batch 1, one thread, when measured).
fn latency_bars(s: &SweepSummary) -> Option<FigureItem> {
    let metric = s
        .cells
        .iter()
        .flat_map(|c| c.metrics.keys())
        .filter_map(|k| latency_group(k).map(|g| (g, k)))
        .min_by_key(|&((b, t), _)| ((b, t) != (1, 1), b, t))
        .map(|(_, k)| k.clone())?;
    let (b, t) = latency_group(&metric)?;
    let bars: Vec<Bar> = s
        .cells
        .iter()
        .filter_map(|cl| {
            cl.metrics.get(&metric).map(|x| Bar {
                label: cell_name(&cl.ratio, &cl.policy),
                value: x.mean,
                err: Some(x.std),
            })
        })
        .collect();
    Some(FigureItem {
        stem: "latency_by_variant".into(),
        caption: format!(
            "Median (p50) latency per variant at batch {b} on {t} thread(s), mean ± std over seeds' models; the \
             paired ratios in the Latency section are the comparison."
        ),
        figure: Figure::Bar(BarChart {
            title: "Latency p50 by variant".into(),
            y_label: "ms".into(),
            bars,
        }),
    })
}

/// Accuracy at source, converted, calibrated and fine-tuned, per cell (stages without records are left out).
fn stages(m: &SweepManifest, s: &SweepSummary) -> Option<Section> {
    let st = StageView::new(s)?;
    let mut headers = vec!["ratio", "policy"];
    headers.extend(st.present.iter().map(|p| p.label()));
    let rows = s
        .cells
        .iter()
        .map(|c| {
            let mut r = vec![c.ratio.clone(), c.policy.clone()];
            r.extend(st.present.iter().map(|&p| {
                st.get(c, p)
                    .map_or("—".into(), |x| pm(x.accuracy.mean, x.accuracy.std, x.accuracy.n, 4))
            }));
            r
        })
        .collect();
    let sources: Vec<String> = st
        .present
        .iter()
        .filter_map(|&p| {
            s.stages
                .iter()
                .find(|x| x.stage == p)
                .map(|x| format!("{}: {}", p.label(), x.source))
        })
        .collect();
    let mut blocks = vec![
        Block::Text(
            "What conversion cost before any training, what calibration recovered, and what fine-tuning bought \
             back (mean ± std over seeds; the source is the 1:1 model every variant was converted from)."
                .into(),
        ),
        table(&headers, rows),
        Block::List(sources),
    ];
    if m.mode == "from-scratch" {
        blocks.push(Block::Text(
            "From-scratch mode: the converted models are random initialisations, so their accuracy is chance level."
                .into(),
        ));
    }
    blocks.extend(st.figure().map(Block::Figure));
    Some(Section {
        title: "Accuracy at each stage".into(),
        blocks,
    })
}

/// The stages a summary has records for, in pipeline order.
struct StageView<'a> {
    s: &'a SweepSummary,
    present: Vec<Stage>,
}

impl<'a> StageView<'a> {
    fn new(s: &'a SweepSummary) -> Option<Self> {
        let present: Vec<Stage> = Stage::ALL
            .into_iter()
            .filter(|st| s.stages.iter().any(|x| x.stage == *st))
            .collect();
        (!present.is_empty()).then_some(StageView { s, present })
    }

    /// A cell's accuracy at `stage`; the source stage is shared by every cell.
    fn get(&self, c: &CellSummary, stage: Stage) -> Option<&'a reports::schema::sweep::StageAccuracy> {
        let find = |ratio: Option<&str>| {
            self.s
                .stages
                .iter()
                .find(|x| x.stage == stage && ratio.is_none_or(|r| x.ratio == r && x.policy == c.policy))
        };
        if stage == Stage::Source {
            find(None)
        } else {
            find(Some(&c.ratio))
        }
    }

    /// One line per cell across the present stages.
    fn figure(&self) -> Option<FigureItem> {
        let series: Vec<Series> = self
            .s
            .cells
            .iter()
            .map(|c| {
                let points = (self.present.iter().enumerate())
                    .filter_map(|(i, &st)| {
                        let a = &self.get(c, st)?.accuracy;
                        Some(Point {
                            x: i as f64,
                            y: a.mean,
                            err: (a.n > 1).then_some(a.std),
                        })
                    })
                    .collect();
                Series::new(cell_name(&c.ratio, &c.policy), points)
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        let labels: Vec<&str> = self.present.iter().map(|s| s.label()).collect();
        (!series.is_empty()).then(|| FigureItem {
            stem: "accuracy_by_stage".into(),
            caption: format!(
                "Top-1 accuracy at each pipeline stage ({}), one line per variant; error bars ± 1 std over seeds.",
                labels.join(" → ")
            ),
            figure: Figure::Line(LineChart {
                title: "Accuracy by pipeline stage".into(),
                x_label: "stage".into(),
                y_label: "top-1 accuracy".into(),
                x_ticks: labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (i as f64, l.to_string()))
                    .collect(),
                series,
                markers: vec![],
            }),
        })
    }
}

/// Centered moving average over `window` points (shorter at the ends).
pub fn moving_average(ys: &[f64], window: usize) -> Vec<f64> {
    let h = window / 2;
    (0..ys.len())
        .map(|i| {
            let (a, b) = (i.saturating_sub(h), (i + h + 1).min(ys.len()));
            ys[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect()
}

/// The variants of each (ratio, policy) cell, cells in order of first appearance.
type Run<'a> = &'a (Variant, VariantResult);

fn by_cell<'a>(runs: impl IntoIterator<Item = Run<'a>>) -> Vec<(String, Vec<Run<'a>>)> {
    let mut out: Vec<(String, Vec<Run<'a>>)> = Vec::new();
    for run in runs {
        let cell = cell_name(&run.0.ratio, &run.0.policy);
        match out.iter_mut().find(|(c, _)| *c == cell) {
            Some((_, v)) => v.push(run),
            None => out.push((cell, vec![run])),
        }
    }
    out
}

/// Mean over seeds of one per-step quantity, per cell, at the steps every seed logged.
fn step_means(c: &Collected, get: fn(&StepRecord) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    by_cell(c.results.iter().filter(|(_, r)| !r.curve.is_empty()))
        .into_iter()
        .map(|(cell, runs)| {
            let mut steps: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for (_, r) in &runs {
                for s in &r.curve {
                    steps.entry(s.step).or_default().push(get(s));
                }
            }
            let pts = steps
                .into_iter()
                .filter(|(_, ys)| ys.len() == runs.len())
                .map(|(x, ys)| (x as f64, ys.iter().sum::<f64>() / ys.len() as f64))
                .collect();
            (cell, pts)
        })
        .collect()
}

/// Training loss and accuracy against the optimizer step: the logged points faint, a moving average on top.
fn training(c: &Collected) -> Option<Section> {
    let mut figs = Vec::new();
    type Get = fn(&StepRecord) -> f64;
    let quantities: [(&str, &str, Get); 2] = [
        ("training_loss", "training loss", |s| s.loss),
        ("training_accuracy", "training accuracy", |s| s.train_acc),
    ];
    for (stem, label, get) in quantities {
        let cells = step_means(c, get);
        let n = cells.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let window = (n / 10).max(1) | 1;
        let mut series = Vec::new();
        for (i, (name, pts)) in cells.into_iter().enumerate() {
            let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let smooth = moving_average(&ys, window);
            let raw = pts.iter().map(|&(x, y)| Point { x, y, err: None }).collect();
            let line = pts
                .iter()
                .zip(smooth)
                .map(|(&(x, _), y)| Point { x, y, err: None })
                .collect();
            series.push(Series {
                name: format!("{name} (logged)"),
                points: raw,
                style: LineStyle::Faint,
                color: Some(i),
            });
            series.push(Series {
                name,
                points: line,
                style: LineStyle::Plain,
                color: Some(i),
            });
        }
        figs.push(FigureItem {
            stem: stem.into(),
            caption: format!(
                "{} per logged step of fine-tuning (each logged point: the mean over the steps since the previous \
                 one; mean over seeds), pale; bold: centered moving average over {window} logged points.",
                label[..1].to_uppercase() + &label[1..]
            ),
            figure: Figure::Line(LineChart {
                title: format!("{} by step", label[..1].to_uppercase() + &label[1..]),
                x_label: "optimizer step".into(),
                y_label: label.into(),
                x_ticks: vec![],
                series,
                markers: vec![],
            }),
        });
    }
    (!figs.is_empty()).then(|| Section {
        title: "Training".into(),
        blocks: figs.into_iter().map(Block::Figure).collect(),
    })
}

/// Per-layer metrics of each cell against relative depth, which block outputs and kept activations share across
/// variants, with the removed activations marked; then CKA against 1:1.
fn richness(s: &SweepSummary, c: &Collected) -> Option<Section> {
    let analysed: Vec<Run> = c.results.iter().filter(|(_, r)| !r.layers.is_empty()).collect();
    if analysed.is_empty() {
        return None;
    }
    let common = s.common_layers.clone().unwrap_or_default();
    let relative = analysed
        .iter()
        .all(|(_, r)| r.layers.iter().all(|l| l.relative_depth.is_some()));
    let mut blocks = vec![Block::Text(format!(
        "Layers are aligned by what conversion leaves alone. Block outputs (joins) and the activations a policy kept \
         keep their node names in every variant, and a layer's relative depth — the share of weight layers before \
         it — is the same in all of them, so the x axis compares like with like{}. Summary means use only the {} \
         layers every variant has: {}.{}",
        if relative {
            ""
        } else {
            " (these records predate relative depth: x is the index among shared layers)"
        },
        common.names.len(),
        common.names.join(", "),
        if common.per_cell.is_empty() {
            String::new()
        } else {
            format!(
                " Layers analysed per variant: {}.",
                common
                    .per_cell
                    .iter()
                    .map(|(r, p, n)| format!("{} {n}", cell_name(r, p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ))];
    let markers = removed_markers(&analysed, relative);
    for (name, _, get) in LAYER_METRICS {
        if let Some(f) = richness_figure(name, *get, &analysed, &common.names, relative, &markers) {
            blocks.push(Block::Figure(f));
        }
    }
    for (v, r) in analysed
        .iter()
        .filter(|(v, r)| v.seed == 0 && v.ratio != "1:1" && r.cka.is_some())
    {
        let Some((cols, rows, values)) = &r.cka else { continue };
        if values.iter().flatten().any(|x| !x.is_finite()) {
            continue;
        }
        blocks.push(Block::Figure(FigureItem {
            stem: format!("cka_{}", v.id),
            caption: format!(
                "Linear CKA between the layers of {} {} (rows) and the 1:1 reference (columns), seed 0.",
                v.ratio, v.policy
            ),
            figure: Figure::Heat(HeatMap {
                title: format!("CKA: {} {} vs 1:1", v.ratio, v.policy),
                x_label: "1:1 layers".into(),
                y_label: format!("{} {} layers", v.ratio, v.policy),
                x_labels: cols.clone(),
                y_labels: rows.clone(),
                values: values.clone(),
                range: Some((0.0, 1.0)),
            }),
        }));
    }
    Some(Section {
        title: "Representation richness".into(),
        blocks,
    })
}

/// Where each N:M cell removed activations, at the 1:1 reference's depth of them (seed 0), in the colour of
/// that cell's line.
fn removed_markers(analysed: &[Run], relative: bool) -> Vec<Marker> {
    let mut out = Vec::new();
    for (i, (cell, runs)) in by_cell(analysed.iter().copied()).into_iter().enumerate() {
        let Some((_, r)) = runs.iter().find(|(v, _)| v.seed == 0 && v.ratio != "1:1") else {
            continue;
        };
        for l in r.reference_layers.iter().filter(|l| r.removed.contains(&l.name)) {
            if let Some(x) = relative.then_some(l.relative_depth).flatten() {
                out.push(Marker {
                    x,
                    label: format!("activation removed in {cell}"),
                    color: Some(i),
                });
            }
        }
    }
    out
}

fn richness_figure(
    name: &str,
    get: LayerGetter,
    analysed: &[Run],
    common: &[String],
    relative: bool,
    markers: &[Marker],
) -> Option<FigureItem> {
    let x_of = |l: &LayerMetrics| {
        if relative {
            l.relative_depth
        } else {
            common.iter().position(|n| *n == l.name).map(|i| i as f64)
        }
    };
    let series: Vec<Series> = by_cell(analysed.iter().copied())
        .into_iter()
        .map(|(cell, runs)| {
            // Per layer (by name, in network order): x and the values over seeds.
            let mut layers: Vec<(&str, f64, Vec<f64>)> = Vec::new();
            for l in runs.iter().flat_map(|(_, r)| &r.layers) {
                let (Some(x), Some(y)) = (x_of(l), get(l)) else {
                    continue;
                };
                match layers.iter_mut().find(|(n, ..)| *n == l.name) {
                    Some(e) => e.2.push(y),
                    None => layers.push((&l.name, x, vec![y])),
                }
            }
            let points = layers
                .into_iter()
                .map(|(_, x, ys)| {
                    let (mean, std) = super::stats::mean_std(&ys);
                    Point {
                        x,
                        y: mean,
                        err: (ys.len() > 1).then_some(std),
                    }
                })
                .collect();
            Series::new(cell, points)
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    let label = name.replace('_', " ");
    Some(FigureItem {
        stem: format!("richness_{name}"),
        caption: format!(
            "{label} per analysed layer against relative depth (mean ± std over seeds); dashed lines: activations \
             the N:M variants removed (at the 1:1 model's depth of them)."
        ),
        figure: Figure::Line(LineChart {
            title: format!("{label} by relative depth"),
            x_label: if relative {
                "relative depth (share of weight layers before the layer)".into()
            } else {
                "shared layer (network order)".into()
            },
            y_label: label,
            x_ticks: vec![],
            series,
            markers: markers.to_vec(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::collect::{LatencyPairs, PerSample, StageValue};
    use reports::schema::Provenance;
    use reports::schema::richness::LayerKind;

    fn layer(name: &str, rel: f64, rank: f64) -> LayerMetrics {
        let kind = if name.starts_with("add") {
            LayerKind::Join
        } else {
            LayerKind::Activation
        };
        crate::sweep::summary::tests::layer(name, kind, Some(rel), rank)
    }

    /// A two-cell, two-seed run with every kind of result a full pipeline yields.
    fn run() -> (Record, SweepManifest, Collected) {
        let mut variants = vec![];
        let mut results = vec![];
        for (ratio, policy) in [("1:1", "none"), ("2:1", "last")] {
            for seed in 0..2u64 {
                let v = Variant {
                    id: format!("{ratio}-{policy}-{seed}"),
                    ratio: ratio.into(),
                    policy: policy.into(),
                    seed,
                };
                let mut r = VariantResult::default();
                let two = ratio == "2:1";
                let bump = if two { 0.01 } else { 0.0 };
                r.metrics.insert("accuracy".into(), 0.85 + bump + 0.003 * seed as f64);
                r.metrics.insert("latency_p50_ms/b1/t1".into(), 1.0 - bump);
                let reference = vec![
                    layer("stem", 0.0, 3.0),
                    layer("relu1", 0.3, 9.0),
                    layer("add1", 0.6, 5.0),
                ];
                r.layers = if two {
                    vec![layer("stem", 0.0, 3.0), layer("add1", 0.6, 5.0 + bump)]
                } else {
                    reference.clone()
                };
                r.reference_layers = reference;
                if two {
                    r.removed = vec!["relu1".into()];
                }
                r.curve = (1..=40)
                    .map(|i| StepRecord {
                        step: i * 5,
                        epoch: Some(1),
                        loss: 2.0 / i as f64 - bump,
                        lr: 0.05,
                        train_acc: 0.5,
                    })
                    .collect();
                r.cka = Some((
                    vec!["a".into(), "b".into()],
                    vec!["a".into(), "b".into()],
                    vec![vec![1.0, 0.4], vec![0.3, 0.9]],
                ));
                r.per_sample = Some(PerSample {
                    data_sha256: "d".into(),
                    indices: (0..100).collect(),
                    correct: (0..100).map(|i| i < 80 + if two { 5 } else { 0 }).collect(),
                });
                r.latency.push(LatencyPairs {
                    batch: 1,
                    threads: 1,
                    variant_ms: vec![1.0 - bump; 20],
                    reference_ms: vec![1.0; 20],
                });
                for (st, a) in [
                    (Stage::Converted, if two { 0.5 } else { 0.84 }),
                    (Stage::FineTuned, 0.85 + bump),
                ] {
                    r.stages.insert(
                        st,
                        StageValue {
                            accuracy: a,
                            source: "the test split".into(),
                        },
                    );
                }
                variants.push(v.clone());
                results.push((v, r));
            }
        }
        let m = SweepManifest {
            sweep_hash: "abc".into(),
            model: "resnet20".into(),
            data: "digits".into(),
            mode: "finetune".into(),
            ratios: vec!["1:1".into(), "2:1".into()],
            policies: vec!["last".into()],
            seeds: 2,
            settings: serde_json::json!({}),
            steps: vec![],
            variants,
        };
        let rec = Record::new(&m, vec!["ratio".into()], Provenance::default(), "t".into()).unwrap();
        (
            rec,
            m,
            Collected {
                results,
                ok: 8,
                ..Default::default()
            },
        )
    }

    #[test]
    fn report_has_every_figure_kind_and_the_paper_table() {
        let (rec, m, c) = run();
        let s = summarize(&m, &c, 0.05);
        let r = build(&rec, &m, &s, &c);
        let stems: Vec<&str> = r.figures().map(|f| f.stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "accuracy_vs_ratio",
                "latency_by_variant",
                "accuracy_by_stage",
                "training_loss",
                "training_accuracy",
                "richness_effective_rank",
                "cka_2:1-last-0"
            ]
        );
        let md = reports::markdown::render(&r);
        assert!(
            md.contains("| resnet20 | 2:1 | last | 2/2 | 0.8615 ± 0.0021 | 0.990 ± 0.000 | 4.00 ± 0.00 |"),
            "{md}"
        );
        // The richness mean is over the 2 shared layers only (1:1's relu1, rank 9, is left out): (3 + 5) / 2.
        assert!(
            md.contains("mean eff. rank (2 shared layers)") && md.contains("| 4.00 ± 0.00 |"),
            "{md}"
        );
        assert!(
            md.contains("Summary means use only the 2 layers every variant has: stem, add1."),
            "{md}"
        );
        // Stage table: source (the 1:1 conversion) for every row, then converted and fine-tuned.
        assert!(
            md.contains("| 2:1 | last | 0.8400 ± 0.0000 | 0.5000 ± 0.0000 | 0.8600 ± 0.0000 |"),
            "{md}"
        );
        // The per-sample test row: +5 points, 5 vs 0 discordant samples per seed, pooled.
        assert!(
            md.contains("| 2:1 | last | 2 | 100 | +5.00 |") && md.contains("| 10 / 0 |"),
            "{md}"
        );
        // Every figure renders in both formats.
        for f in r.figures() {
            reports::plot::render_svg(&f.figure).unwrap();
            let png = reports::plot::render_png(&f.figure).unwrap();
            if let Ok(d) = std::env::var("RATIO_KEEP_FIGURES") {
                std::fs::write(Path::new(&d).join(format!("{}.png", f.stem.replace(':', "_"))), png).unwrap();
            }
        }
        let fig = |stem: &str| &r.figures().find(|f| f.stem == stem).unwrap().figure;
        // Accuracy vs ratio starts each policy's line at the shared 1:1 point.
        let Figure::Line(l) = fig("accuracy_vs_ratio") else {
            panic!()
        };
        assert_eq!(l.series[0].points[0].x, 1.0);
        assert_eq!(l.series[0].points.len(), 2);
        // Richness: the shared layer add1 sits at the same x in both cells; the removed relu1 is marked.
        let Figure::Line(l) = fig("richness_effective_rank") else {
            panic!()
        };
        assert_eq!(
            l.series[0].points.iter().map(|p| p.x).collect::<Vec<_>>(),
            [0.0, 0.3, 0.6]
        );
        assert_eq!(l.series[1].points.iter().map(|p| p.x).collect::<Vec<_>>(), [0.0, 0.6]);
        assert_eq!(l.markers.len(), 1);
        assert_eq!(
            (l.markers[0].x, l.markers[0].label.as_str(), l.markers[0].color),
            (0.3, "activation removed in 2:1 last", Some(1)),
            "the marker takes the colour of the 2:1 line"
        );
        // Training: per cell a faint logged line and its smoothed line in the same colour, against the step.
        let Figure::Line(l) = fig("training_loss") else {
            panic!()
        };
        assert_eq!(l.series.len(), 4);
        assert_eq!(
            (l.series[0].style, l.series[1].style),
            (LineStyle::Faint, LineStyle::Plain)
        );
        assert_eq!(l.series[0].color, l.series[1].color);
        assert_eq!(l.series[1].points.len(), 40);
        assert_eq!(l.series[1].points[39].x, 200.0);
        assert_eq!(l.x_label, "optimizer step");
    }

    #[test]
    fn missing_stages_are_left_out_cleanly() {
        let (rec, m, mut c) = run();
        for (_, r) in &mut c.results {
            r.stages.remove(&Stage::FineTuned);
        }
        let s = summarize(&m, &c, 0.05);
        let r = build(&rec, &m, &s, &c);
        let md = reports::markdown::render(&r);
        assert!(md.contains("| ratio | policy | source | converted |\n"), "{md}");
        assert!(!md.contains("calibrated") && !md.contains("| fine-tuned"), "{md}");
        for (_, r) in &mut c.results {
            r.stages.clear();
        }
        let s = summarize(&m, &c, 0.05);
        let r = build(&rec, &m, &s, &c);
        assert!(r.figures().all(|f| f.stem != "accuracy_by_stage"));
        assert!(!reports::markdown::render(&r).contains("Accuracy at each stage"));
    }

    #[test]
    fn moving_average_is_centered_and_shrinks_at_the_ends() {
        assert_eq!(moving_average(&[1.0, 2.0, 3.0, 4.0, 5.0], 3), [1.5, 2.0, 3.0, 4.0, 4.5]);
        assert_eq!(moving_average(&[1.0, 9.0], 1), [1.0, 9.0]);
        assert!(moving_average(&[], 5).is_empty());
    }
}
