//! `ratio richness`: per-layer representation richness of one or more models on the same samples, with CKA
//! between them; terminal table, `--json` record and SVG/PNG plots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use converters::Model;
use converters::ir::model::{sha256_file, write_atomic};
use reports::schema::richness::{CkaMatrix, ModelRichness, RichnessBody};
use reports::schema::{FileRef, Record};

use super::args::{DataArgs, OutputArgs, RuntimeArgs};
use crate::analysis::richness::source::open_source;
use crate::analysis::richness::{LayerSelect, ModelCapture, RichnessOptions, analyze, data_input};
use crate::data::Split;
use crate::runtime::Device;

#[derive(Debug, clap::Args)]
pub struct RichnessArgs {
    /// Models to analyse on the same samples (same input); CKA compares the first with each other one, or a single
    /// model's layers with each other.
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    #[command(flatten)]
    pub input: DataArgs,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// `auto` (every activation slot and block output), a comma-separated list of node/output names, or
    /// `re:REGEX`.
    #[arg(long, default_value = "auto")]
    pub layers: String,
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    #[arg(long, default_value_t = 250)]
    pub batch: usize,
    /// Samples whose pooled features are kept per layer for CKA.
    #[arg(long, default_value_t = 2000)]
    pub cka_samples: usize,
    /// Spatial positions drawn per sample for the spatial covariance.
    #[arg(long, default_value_t = 4)]
    pub positions: usize,
    /// Seed of the probe split and the spatial positions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the linear probe.
    #[arg(long)]
    pub no_probe: bool,
    /// Ridge penalty of the probe (on standardised features).
    #[arg(long, default_value_t = 1e-3)]
    pub ridge: f64,
    #[command(flatten)]
    pub record: OutputArgs,
    /// Write one SVG and one PNG per figure into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn run(args: RichnessArgs) -> Result<ExitCode> {
    let select = LayerSelect::parse(&args.layers).map_err(anyhow::Error::msg)?;
    let config = args.runtime.config();
    let mut models = Vec::new();
    let mut inputs = Vec::new();
    let mut first_input: Option<(String, Vec<Option<i64>>)> = None;
    for path in &args.models {
        let model = Model::load(path).with_context(|| format!("loading {}", path.display()))?;
        let sha = sha256_file(path)?;
        inputs.push(FileRef {
            path: path.display().to_string(),
            sha256: sha.clone(),
        });
        if first_input.is_none() {
            let (name, _) = data_input(&model)?;
            let dims = model.input_dims(&name);
            first_input = Some((name, dims));
        }
        models.push(ModelCapture::new(&model, sha, &select, &config)?);
    }
    let (input_name, dims) = first_input.context("no model given")?;
    let source = open_source(
        &args.input.data,
        &args.input.preset,
        args.split,
        args.batch,
        args.samples,
        &input_name,
        &dims,
    )?;
    let data = source.data.clone();
    let opts = RichnessOptions {
        samples: args.samples,
        cka_samples: args.cka_samples,
        positions: args.positions,
        seed: args.seed,
        probe: !args.no_probe,
        ridge: args.ridge,
        probe_max_test: args.samples,
        classes: source.classes,
    };
    let run = analyze(&mut models, source, &opts)?;
    let body = RichnessBody {
        data: data.clone(),
        samples: run.samples,
        seed: args.seed,
        cka_samples: args.cka_samples,
        positions: args.positions,
        ridge: (!args.no_probe).then_some(args.ridge),
        models: run.models,
        cka: run.cka,
    };
    let ort_version = models
        .first()
        .map(|m| m.runner().ort_version().to_string())
        .unwrap_or_default();
    let provenance = record_provenance(
        args.runtime.device,
        &ort_version,
        [
            ("seed", serde_json::json!(args.seed)),
            ("data_sha256", serde_json::json!(data.sha256)),
            ("preset_fingerprint", serde_json::json!(data.preset_fingerprint)),
            ("threads", serde_json::json!(args.runtime.threads)),
        ],
    );
    let mut outputs = Vec::new();
    if let Some(dir) = &args.plots {
        outputs.extend(write_plots(dir, &body)?);
    }
    let mut record = crate::commands::record(&body, provenance)?;
    record.inputs = inputs;
    record.outputs = outputs;
    if !args.record.to_stdout() {
        print_table(&body, &record);
    }
    args.record.write(&record)?;
    Ok(ExitCode::SUCCESS)
}

/// The record's provenance: tool and ORT versions, machine, device, plus `extra` pins.
pub(crate) fn record_provenance<const N: usize>(
    device: Device,
    ort_version: &str,
    extra: [(&str, serde_json::Value); N],
) -> reports::schema::Provenance {
    use crate::provenance::Collect;
    let mut p = crate::provenance::Provenance::with_ort_version(device, ort_version.to_string());
    p.extra.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    p
}

fn write_plots(dir: &Path, body: &RichnessBody) -> Result<Vec<FileRef>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (stem, fig) in body.figures() {
        let svg = reports::plot::render_svg(&fig)?;
        let png = reports::plot::render_png(&fig)?;
        for (ext, bytes) in [("svg", svg.into_bytes()), ("png", png)] {
            let path = dir.join(format!("{stem}.{ext}"));
            write_atomic(&path, &bytes)?;
            written.push(FileRef {
                path: path.display().to_string(),
                sha256: { converters::ir::model::sha256_hex(&bytes) },
            });
        }
    }
    Ok(written)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

fn print_table(body: &RichnessBody, record: &Record) {
    for m in &body.models {
        crate::outln!(
            "{}  sha256 {}  input {}  top-1 {}  ({} samples; ORT {:.2} s, statistics {:.2} s)",
            m.name,
            &m.sha256[..m.sha256.len().min(12)],
            m.input,
            opt(m.accuracy, 4),
            body.samples,
            m.run_seconds,
            m.stats_seconds
        );
        print_layers(m);
    }
    for c in &body.cka {
        print_cka(c);
    }
    let p = &record.provenance;
    crate::outln!(
        "data {} ({}, sha256 {}), preset {} [{}], seed {}; ORT {}, {}, {}",
        body.data.path,
        body.data.split.as_deref().unwrap_or("-"),
        &body.data.sha256[..body.data.sha256.len().min(12)],
        body.data.preset,
        &body.data.preset_fingerprint[..body.data.preset_fingerprint.len().min(12)],
        body.seed,
        p.ort_version.as_deref().unwrap_or("?"),
        p.device_label(),
        p.machine.describe()
    );
}

fn print_layers(m: &ModelRichness) {
    crate::outln!(
        "{:>3} {:<40} {:<9} {:>5} {:>6} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7} {:>7} {:>7} {:>6}",
        "#",
        "layer",
        "op",
        "C",
        "dead",
        "sparse",
        "negm",
        "patterns",
        "H bits",
        "pos-H",
        "effrank",
        "PR",
        "sp-effr",
        "probe"
    );
    for l in &m.layers {
        let name = tail(&l.name, 40);
        crate::outln!(
            "{:>3} {:<40} {:<9} {:>5} {:>6} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7} {:>7} {:>7} {:>6}",
            l.depth,
            name,
            l.op,
            l.channels,
            opt(l.dead_fraction, 3),
            opt(l.sparsity, 3),
            opt(l.negative_mass, 3),
            l.distinct_patterns.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            opt(l.pattern_entropy_bits, 2),
            opt(l.position_pattern_entropy_bits, 2),
            opt(l.effective_rank, 2),
            opt(l.participation_ratio, 2),
            opt(l.spatial_effective_rank, 2),
            opt(l.probe_accuracy, 4),
        );
    }
}

/// Two models: matched layers (same name, else same depth) with each layer's best match. One model: its
/// layer-by-layer matrix.
fn print_cka(c: &CkaMatrix) {
    crate::outln!("CKA (debiased, {} samples): {} vs {}", c.samples, c.left, c.right);
    if c.left == c.right {
        for (i, l) in c.left_layers.iter().enumerate() {
            let row: Vec<String> = c.values[i].iter().map(|v| format!("{:>6}", opt(*v, 3))).collect();
            crate::outln!("  {:>3} {:<40} {}", i, tail(l, 40), row.join(" "));
        }
        return;
    }
    for (i, l) in c.left_layers.iter().enumerate() {
        let j = c
            .right_layers
            .iter()
            .position(|r| r == l)
            .or((i < c.right_layers.len()).then_some(i));
        if let Some(j) = j {
            let best = (0..c.right_layers.len())
                .filter_map(|k| c.values[i][k].map(|v| (k, v)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            crate::outln!(
                "  {:<40} ~ {:<40} {}   best match: {}",
                tail(l, 40),
                tail(&c.right_layers[j], 40),
                opt(c.values[i][j], 4),
                best.map(|(k, v)| format!("{} ({v:.4})", c.right_layers[k]))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
}

/// The last `n` characters of `s` (layer names are long paths whose end says the most).
fn tail(s: &str, n: usize) -> &str {
    match s.char_indices().rev().nth(n.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > n => &s[i..],
        _ => s,
    }
}
