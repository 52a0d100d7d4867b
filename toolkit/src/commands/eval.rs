//! `ratio eval`: accuracy of one or more models on the same samples in one pass over the data, with paired
//! statistics against the first model. [`evaluate`] is the library entry point (tests and benches call it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use reports::schema::eval as schema;

use super::args::{DataArgs, OutputArgs, RuntimeArgs};
use crate::analysis::evaluate::{EvalConfig, Evaluated, evaluate};
use crate::data::loader::{LoaderConfig, OnCorrupt};
use crate::data::preprocess::{ChannelOrder, DType, Layout, Preset};
use crate::data::{self, Dataset, Format, OpenOptions, Split};
use crate::provenance::Provenance;
use crate::runtime::Runner;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// ONNX models; the first is the baseline the others are compared with.
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    #[command(flatten)]
    pub input: DataArgs,
    /// Dataset format (guessed from the path when absent).
    #[arg(long)]
    pub format: Option<Format>,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Evaluate only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// What to do with an image that cannot be decoded.
    #[arg(long, value_enum, default_value_t = OnCorrupt::Fail)]
    pub on_corrupt: OnCorrupt,
    /// Model output holding the class scores (default: the first output).
    #[arg(long)]
    pub output: Option<String>,
    /// Override the preset: convert RGB to one gray channel first.
    #[arg(long)]
    pub grayscale: bool,
    #[arg(long, value_enum)]
    pub layout: Option<Layout>,
    #[arg(long, value_enum)]
    pub dtype: Option<DType>,
    #[arg(long, value_enum)]
    pub channel_order: Option<ChannelOrder>,
    /// Bootstrap resamples for the accuracy-difference interval.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// Also record every sample's index, label and each model's prediction (`samples` and
    /// `models[].predictions` in the JSON record), so that runs can be paired sample by sample later.
    #[arg(long)]
    pub per_sample: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print per-class accuracy as CSV instead of the table.
    #[arg(long)]
    pub csv: bool,
    /// Print the confusion matrix of every model.
    #[arg(long)]
    pub confusion: bool,
    /// Exit with status 1 when the first model's top-1 is below this fraction.
    #[arg(long)]
    pub min_top1: Option<f64>,
    #[command(flatten)]
    pub record: OutputArgs,
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    if args.csv && args.record.to_stdout() {
        bail!("--csv and --json - both print to stdout; write the record to a file with --json FILE");
    }
    let mut preset = Preset::load(&args.input.preset)?;
    let p = &mut preset.pipeline;
    p.grayscale |= args.grayscale;
    p.layout = args.layout.unwrap_or(p.layout);
    p.dtype = args.dtype.unwrap_or(p.dtype);
    p.channel_order = args.channel_order.unwrap_or(p.channel_order);
    preset.validate()?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let ds: Arc<dyn Dataset> = Arc::from(
        data::open(
            &args.input.data,
            &OpenOptions {
                format: args.format,
                split: args.split,
            },
        )
        .with_context(|| format!("opening dataset '{}'", args.input.data))?,
    );
    let config = args.runtime.config();
    let runners = args
        .models
        .iter()
        .map(|m| Runner::from_path(m, &config).with_context(|| format!("loading model {}", m.display())))
        .collect::<Result<Vec<_>>>()?;
    let cfg = EvalConfig {
        loader: LoaderConfig {
            batch: args.batch,
            limit: args.limit,
            prefetch: 2,
            on_corrupt: args.on_corrupt,
        },
        output: args.output.clone(),
        bootstrap: args.bootstrap,
        seed: args.seed,
        progress: crate::printer::progress_enabled(),
        per_sample: args.per_sample,
    };
    let evaluated = evaluate(runners, ds, &preset, &cfg, args.runtime.threads)?;
    let envelope = envelope(&evaluated, &args)?;
    let record = &evaluated.body;
    args.record.write(&envelope)?;
    let mut stdout = std::io::stdout().lock();
    if args.record.to_stdout() {
        // Written above.
    } else if args.csv {
        write_csv(&mut stdout, record)?;
    } else {
        write_table(&mut stdout, record, &evaluated.provenance, args.confusion)?;
    }
    let below = args.min_top1.is_some_and(|min| record.models[0].top1 < min);
    Ok(if below { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Wrap the body in the shared record envelope: command line, provenance (with the preset fingerprint, data hash
/// and bootstrap seed under `extra`), and every input file pinned by sha256.
fn envelope(e: &Evaluated, args: &EvalArgs) -> Result<reports::schema::Record> {
    let r = &e.body;
    let prov = e
        .provenance
        .clone()
        .with_extra("preset_fingerprint", r.preset.fingerprint.clone())
        .with_extra("data_sha256", r.data.sha256.clone())
        .with_extra("bootstrap_seed", args.seed);
    let mut rec = crate::commands::record(r, prov)?;
    rec.inputs = r
        .models
        .iter()
        .filter_map(|m| {
            m.sha256.as_ref().map(|sha| reports::schema::FileRef {
                path: m.path.clone(),
                sha256: sha.clone(),
            })
        })
        .collect();
    if r.data.hashed == "files" {
        rec.inputs.push(reports::schema::FileRef {
            path: r.data.path.clone(),
            sha256: r.data.sha256.clone(),
        });
    }
    Ok(rec)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn write_table(w: &mut impl Write, r: &schema::EvalRecord, p: &Provenance, confusion: bool) -> std::io::Result<()> {
    let d = &r.data;
    writeln!(
        w,
        "data     {} ({}{}, {} of {} samples, sha256 {} of {})",
        d.path,
        d.format,
        d.split.as_deref().map(|s| format!(" {s}")).unwrap_or_default(),
        d.evaluated,
        d.count,
        &d.sha256[..12],
        d.hashed
    )?;
    if d.skipped_corrupt > 0 {
        writeln!(w, "skipped  {} corrupt images", d.skipped_corrupt)?;
    }
    writeln!(
        w,
        "preset   {} (fingerprint {})",
        r.preset.name,
        &r.preset.fingerprint[..12]
    )?;
    writeln!(
        w,
        "run      ORT {} {} on {}, batch {}, {:.2} s, {:.0} samples/s",
        p.ort_version.as_deref().unwrap_or("?"),
        p.device_label(),
        p.machine.describe(),
        r.run.batch,
        r.run.seconds,
        r.run.samples_per_second
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{:<40} {:>8} {:>8} {:>8} {:>9}  sha256",
        "model", "top-1", "top-k", "loss", "run s"
    )?;
    for m in &r.models {
        writeln!(
            w,
            "{:<40} {:>8} {:>8} {:>8.4} {:>9.3}  {}",
            m.path,
            pct(m.top1),
            format!("{}@{}", pct(m.top5), m.top_k),
            m.mean_loss,
            m.run_seconds,
            m.sha256.as_deref().map_or("-", |s| &s[..12])
        )?;
    }
    if !r.comparisons.is_empty() {
        writeln!(w)?;
        let c0 = &r.comparisons[0];
        writeln!(
            w,
            "vs {} (paired bootstrap: {} resamples, seed {}):",
            c0.baseline, c0.bootstrap_resamples, c0.bootstrap_seed
        )?;
        writeln!(
            w,
            "{:<40} {:>9} {:>10} {:>10} {:>22}",
            "model", "agree", "McNemar p", "Δ top-1", "95% CI (bootstrap)"
        )?;
        for c in &r.comparisons {
            writeln!(
                w,
                "{:<40} {:>9} {:>10.4} {:>+10.4} {:>22}",
                c.model,
                pct(c.agreement),
                c.mcnemar_p,
                c.top1_diff,
                match (c.ci_low, c.ci_high) {
                    (Some(lo), Some(hi)) => format!("[{lo:+.4}, {hi:+.4}]"),
                    _ => "-".into(),
                }
            )?;
        }
    }
    for m in &r.models {
        writeln!(w)?;
        writeln!(w, "per class, {}:", m.path)?;
        for c in &m.per_class {
            let acc = c.accuracy.map_or("-".into(), pct);
            writeln!(
                w,
                "  {:>4} {:<20} {:>6}/{:<6} {:>8}",
                c.class, c.name, c.correct, c.count, acc
            )?;
        }
        if confusion {
            writeln!(w, "confusion (row = true, column = predicted):")?;
            for row in &m.confusion {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:>5}")).collect();
                writeln!(w, "  {}", cells.join(""))?;
            }
        }
    }
    Ok(())
}

fn write_csv(w: &mut impl Write, r: &schema::EvalRecord) -> std::io::Result<()> {
    let esc = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    writeln!(
        w,
        "model,model_sha256,data_sha256,preset_fingerprint,class,name,count,correct,accuracy"
    )?;
    for m in &r.models {
        let sha = m.sha256.as_deref().unwrap_or("");
        let head = format!("{},{sha},{},{}", esc(&m.path), r.data.sha256, r.preset.fingerprint);
        writeln!(
            w,
            "{head},all,all,{},{},{}",
            m.samples,
            (m.top1 * m.samples as f64).round() as u64,
            m.top1
        )?;
        for c in &m.per_class {
            let acc = c.accuracy.map(|a| a.to_string()).unwrap_or_default();
            writeln!(w, "{head},{},{},{},{},{acc}", c.class, esc(&c.name), c.count, c.correct)?;
        }
    }
    Ok(())
}
