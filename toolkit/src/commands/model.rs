//! `ratio model NAME -o FILE`: build a reference CNN (or a converter pattern fixture) from the `models` crate
//! and write it as ONNX, atomically. `--list` names what can be built. The summary (text or `--json`) carries the
//! written file's sha256, the full configuration and seed, and where it was built.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use converters::ir::Model;
use converters::ir::attr::NodeExt;
use models::stats::{op_counts, param_count};
use models::{ModelConfig, fold_bn_report, patterns};
use reports::schema::model::{ModelBody, ModelConfig as ConfigRecord};
use reports::schema::{FileRef, Record};

/// Prefix that selects a pattern fixture instead of a registry model.
const PATTERN: &str = "pattern:";

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// What to build: resnet20, resnet56, vgg, densenet, plain, resnet50, or pattern:<fixture> (see --list;
    /// fixtures have fixed shapes and seeds, so the size, width and seed options do not apply to them).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// Where to write the ONNX file (written atomically).
    #[arg(long, short, alias = "out", required_unless_present = "list")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// List buildable models and fixtures, then exit.
    #[arg(long)]
    pub list: bool,
    /// Input channels (3 for RGB, 1 for MNIST/digits).
    #[arg(long, alias = "in-channels", default_value_t = 3)]
    pub channels: i64,
    /// Input height = width.
    #[arg(long, alias = "size", default_value_t = 32)]
    pub input_size: i64,
    #[arg(long, default_value_t = 10)]
    pub classes: i64,
    /// Width multiplier of every hidden layer.
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// Seed of the weight initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random BatchNormalization statistics instead of a fresh model's identity (for tests).
    #[arg(long)]
    pub random_bn_stats: bool,
    /// Fold Conv→BatchNormalization pairs into the convolutions (deployment form).
    #[arg(long)]
    pub fold_bn: bool,
    #[command(flatten)]
    pub record: super::args::OutputArgs,
}

pub fn run(args: ModelArgs) -> Result<ExitCode> {
    if args.list {
        crate::outln!("models: {}", models::names().join(", "));
        let fixtures: Vec<String> = patterns::all().iter().map(|(n, _)| format!("{PATTERN}{n}")).collect();
        crate::outln!("fixtures: {}", fixtures.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(name), Some(out)) = (args.name.as_deref(), args.output.as_ref()) else {
        bail!("give a model name and --output FILE, or --list");
    };
    if out.exists() && !args.force {
        bail!("{}: output exists; pass --force to overwrite", out.display());
    }
    let cfg = ModelConfig {
        in_channels: args.channels,
        input_size: args.input_size,
        num_classes: args.classes,
        width: args.width,
        seed: args.seed,
        random_bn_stats: args.random_bn_stats,
    };
    let t = Instant::now();
    let (proto, config) = match name.strip_prefix(PATTERN) {
        Some(fixture) => {
            let Some(p) = patterns::by_name(fixture) else {
                let known: Vec<&str> = patterns::all().iter().map(|(n, _)| *n).collect();
                bail!("unknown fixture '{fixture}' (known: {})", known.join(", "));
            };
            (p, None)
        }
        None => (
            models::by_name(name, &cfg).with_context(|| format!("building '{name}'"))?,
            Some(ConfigRecord {
                in_channels: cfg.in_channels,
                input_size: cfg.input_size,
                num_classes: cfg.num_classes,
                width: cfg.width,
                seed: cfg.seed,
                random_bn_stats: cfg.random_bn_stats,
            }),
        ),
    };
    let (proto, folded) = if args.fold_bn {
        let (p, pairs) = fold_bn_report(&proto).with_context(|| format!("folding BatchNormalization in '{name}'"))?;
        (p, pairs.len())
    } else {
        (proto, 0)
    };
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let problems = converters::validate::validate(proto.graph.as_ref().context("built model has no graph")?);
    if !problems.is_empty() {
        bail!("built model '{name}' is invalid: {}", problems.join("; "));
    }
    let model = Model::new(proto);
    // The bytes `save` writes for a model without external data, hashed here rather than re-read.
    let bytes = model.to_inline_bytes()?;
    model
        .save(out, false)
        .with_context(|| format!("writing {}", out.display()))?;
    let g = model.graph();
    let built = ModelBody {
        model: name.to_string(),
        path: out.display().to_string(),
        sha256: converters::ir::model::sha256_hex(&bytes),
        bytes: bytes.len(),
        config,
        folded_bn_pairs: folded,
        params: param_count(&model.proto),
        nodes: g.node.len(),
        op_histogram: op_counts(&model.proto),
        build_ms,
    };
    let provenance = crate::provenance::no_runtime().with_extra("seed", args.seed);
    let mut record = crate::commands::record(&built, provenance)?;
    record.outputs.push(FileRef {
        path: built.path.clone(),
        sha256: built.sha256.clone(),
    });
    args.record.write(&record)?;
    if !args.record.to_stdout() {
        print_text(&built, &record, g.node.iter().filter(|n| n.op() == "Relu").count());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(b: &ModelBody, r: &Record, relus: usize) {
    crate::outln!("{} → {}  (sha256 {}, {} bytes)", b.model, b.path, b.sha256, b.bytes);
    if let Some(c) = &b.config {
        crate::outln!(
            "  input {}×{}×{}, {} classes, width {}, seed {}{}",
            c.in_channels,
            c.input_size,
            c.input_size,
            c.num_classes,
            c.width,
            c.seed,
            if c.random_bn_stats {
                ", random BN statistics"
            } else {
                ""
            }
        );
    }
    let count = |op: &str| b.op_histogram.get(op).copied().unwrap_or(0);
    crate::outln!(
        "  {} parameters, {} nodes: {} Conv, {} BatchNormalization, {relus} Relu; {} BN pairs folded",
        b.params,
        b.nodes,
        count("Conv"),
        count("BatchNormalization"),
        b.folded_bn_pairs
    );
    crate::outln!(
        "  built in {:.1} ms by ratio {} on {}, {}",
        b.build_ms,
        r.provenance.tool_version,
        r.provenance.machine.describe(),
        r.created
    );
}
