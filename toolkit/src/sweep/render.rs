//! Build the report of a run directory: recompute the plan from the manifest, read the trusted records (all
//! shards), summarise, and write summary.json, report/report.md, report/index.html and report/figures/*.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use converters::ir::model::write_atomic;
use reports::doc::{Block, FigureItem, Report, Section, Table, png_path, svg_path};
use reports::plot::{Bar, BarChart, Figure, HeatMap, LineChart, Point, Series};
use reports::schema::sweep::{SweepManifest, SweepSummary};
use reports::schema::{Record, now_rfc3339};

use super::spec::{Ratio, SweepSpec};
use super::summary::{Collected, LAYER_METRICS, collect, summarize};
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
    Ratio::parse(r).map(Ratio::value).unwrap_or(f64::NAN)
}

/// The report's content, from the summary and per-variant results.
pub fn build(mrec: &Record, m: &SweepManifest, s: &SweepSummary, c: &Collected) -> Report {
    let mut sections = Vec::new();

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
            prov.machine
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
    sections.push(Section {
        title: "What the data support".into(),
        blocks: vec![
            Block::List(s.conclusions.clone()),
            Block::Text(format!(
                "Tests pair runs by seed against 1:1 (two-sided paired t-test, Holm-corrected per metric, α = {}). \
                 Per-step provenance (exact command, versions, input/output sha256) is in each variants/<id>/<step>.json.",
                s.alpha
            )),
            Block::List(facts),
        ],
    });

    // The paper's table shape: model × ratio × policy → accuracy ± std, latency, size, compute.
    let cols: [(&str, &str, usize, bool); 7] = [
        ("accuracy", "top-1 accuracy", 4, false),
        ("latency_p50_ms", "latency p50 (ms)", 3, false),
        ("params", "parameters", 0, true),
        ("macs", "MACs", 0, true),
        ("relus", "ReLUs", 0, true),
        ("mean_effective_rank", "mean eff. rank", 2, false),
        ("mean_dead_fraction", "mean dead fraction", 3, false),
    ];
    let present: Vec<_> = cols
        .iter()
        .filter(|(k, ..)| s.cells.iter().any(|cl| cl.metrics.contains_key(*k)))
        .collect();
    let mut headers = vec!["model".to_string(), "ratio".into(), "policy".into(), "seeds".into()];
    headers.extend(present.iter().map(|(_, h, ..)| h.to_string()));
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
                r.push(match cl.metrics.get(*k) {
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
    if !s.comparisons.is_empty() {
        blocks.push(Block::Table(Table {
            headers: [
                "ratio",
                "policy",
                "metric",
                "mean Δ vs 1:1",
                "pairs",
                "adj. p",
                "significant",
            ]
            .map(String::from)
            .to_vec(),
            rows: s
                .comparisons
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
        }));
    }
    sections.push(Section {
        title: "Summary".into(),
        blocks,
    });

    let mut figs = Vec::new();
    // Accuracy vs ratio: one line per policy, each starting from the shared 1:1 point.
    if let Some(base) = s
        .cells
        .iter()
        .find(|cl| cl.ratio == "1:1")
        .and_then(|cl| cl.metrics.get("accuracy"))
    {
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
                Series {
                    name: p.clone(),
                    points,
                }
            })
            .filter(|s| s.points.iter().all(|p| p.x.is_finite()))
            .collect();
        figs.push(FigureItem {
            stem: "accuracy_vs_ratio".into(),
            caption: "Top-1 accuracy against the conv:ReLU ratio N/M, one line per placement policy; error bars ± 1 std over seeds.".into(),
            figure: Figure::Line(LineChart {
                title: format!("Accuracy vs conv:ReLU ratio — {} on {}", s.model, data_label(&s.data)),
                x_label: "conv:ReLU ratio (N/M)".into(),
                y_label: "top-1 accuracy".into(),
                x_ticks: ticks,
                series,
            }),
        });
    }
    let lat: Vec<Bar> = s
        .cells
        .iter()
        .filter_map(|cl| {
            cl.metrics.get("latency_p50_ms").map(|x| Bar {
                label: format!("{} {}", cl.ratio, cl.policy),
                value: x.mean,
                err: Some(x.std),
            })
        })
        .collect();
    if !lat.is_empty() {
        figs.push(FigureItem {
            stem: "latency_by_variant".into(),
            caption: "Median (p50) latency per variant, mean ± std over seeds' models (same machine, interleaved runs per `ratio bench`).".into(),
            figure: Figure::Bar(BarChart { title: "Latency p50 by variant".into(), y_label: "ms".into(), bars: lat }),
        });
    }
    let curves: Vec<Series> = c
        .results
        .iter()
        .filter(|(v, r)| !r.curve.is_empty() && v.seed == 0)
        .map(|(v, r)| Series {
            name: format!("{} {}", v.ratio, v.policy),
            points: r
                .curve
                .iter()
                .map(|(x, y)| Point {
                    x: *x,
                    y: *y,
                    err: None,
                })
                .collect(),
        })
        .collect();
    if !curves.is_empty() {
        figs.push(FigureItem {
            stem: "training_curves".into(),
            caption: "Training loss per epoch (seed 0 of each variant).".into(),
            figure: Figure::Line(LineChart {
                title: "Training curves".into(),
                x_label: "epoch".into(),
                y_label: "training loss".into(),
                x_ticks: vec![],
                series: curves,
            }),
        });
    }
    for (name, _) in LAYER_METRICS {
        // Mean over seeds per layer index, one line per (ratio, policy).
        let mut by_cell: BTreeMap<(String, String), Vec<Vec<f64>>> = BTreeMap::new();
        for (v, r) in &c.results {
            if let Some(xs) = r.layer_metrics.get(*name) {
                by_cell
                    .entry((v.ratio.clone(), v.policy.clone()))
                    .or_default()
                    .push(xs.clone());
            }
        }
        let series: Vec<Series> = by_cell
            .into_iter()
            .map(|((r, p), runs)| {
                let depth = runs.iter().map(Vec::len).min().unwrap_or(0);
                let points = (0..depth)
                    .map(|i| {
                        let col: Vec<f64> = runs.iter().map(|x| x[i]).collect();
                        let (mean, std) = super::stats::mean_std(&col);
                        Point {
                            x: i as f64,
                            y: mean,
                            err: (col.len() > 1).then_some(std),
                        }
                    })
                    .collect();
                Series {
                    name: format!("{r} {p}"),
                    points,
                }
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if !series.is_empty() {
            figs.push(FigureItem {
                stem: format!("richness_{name}"),
                caption: format!(
                    "{} per analysed layer, in network order (mean ± std over seeds).",
                    name.replace('_', " ")
                ),
                figure: Figure::Line(LineChart {
                    title: format!("{} against depth", name.replace('_', " ")),
                    x_label: "layer (network order)".into(),
                    y_label: name.replace('_', " "),
                    x_ticks: vec![],
                    series,
                }),
            });
        }
    }
    for (v, r) in c
        .results
        .iter()
        .filter(|(v, r)| v.seed == 0 && v.ratio != "1:1" && r.cka.is_some())
    {
        let Some((cols, rows, values)) = &r.cka else { continue };
        figs.push(FigureItem {
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
        });
    }
    let fig_blocks: Vec<Block> = if figs.is_empty() {
        vec![Block::Text(
            "No step produced plottable results yet (see the step counts above).".into(),
        )]
    } else {
        figs.into_iter().map(Block::Figure).collect()
    };
    sections.push(Section {
        title: "Figures".into(),
        blocks: fig_blocks,
    });

    if !c.untrusted.is_empty() {
        sections.push(Section {
            title: "Records not used".into(),
            blocks: vec![
                Block::Text("These records failed verification (unreadable, or their files changed) and were ignored; rerun the sweep command to redo them.".into()),
                Block::List(c.untrusted.clone()),
            ],
        });
    }
    Report {
        title: format!("ratio sweep — {} on {}", s.model, data_label(&s.data)),
        sections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::summary::VariantResult;
    use reports::schema::Provenance;
    use reports::schema::sweep::Variant;

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
                let bump = if ratio == "2:1" { 0.01 } else { 0.0 };
                r.metrics.insert("accuracy".into(), 0.85 + bump + 0.003 * seed as f64);
                r.metrics.insert("latency_p50_ms".into(), 1.0 - bump);
                r.layer_metrics
                    .insert("effective_rank".into(), vec![3.0, 5.0 + bump, 7.0]);
                r.curve = vec![(1.0, 1.2), (2.0, 0.7 - bump)];
                r.cka = Some((
                    vec!["a".into(), "b".into()],
                    vec!["a".into(), "b".into()],
                    vec![vec![1.0, 0.4], vec![0.3, 0.9]],
                ));
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
                "training_curves",
                "richness_effective_rank",
                "cka_2:1-last-0"
            ]
        );
        let md = reports::markdown::render(&r);
        assert!(
            md.contains("| resnet20 | 2:1 | last | 2/2 | 0.8615 ± 0.0021 | 0.990 ± 0.000 |"),
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
        // Accuracy vs ratio starts each policy's line at the shared 1:1 point.
        let Figure::Line(l) = &r.figures().next().unwrap().figure else {
            panic!()
        };
        assert_eq!(l.series[0].points[0].x, 1.0);
        assert_eq!(l.series[0].points.len(), 2);
    }
}
