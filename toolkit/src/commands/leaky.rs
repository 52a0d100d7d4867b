//! `ratio leaky`: decompose a LeakyRelu network's output into the binomial mixture of subnetworks with k gated
//! layers (DESIGN.md §6), run as ONNX graphs in ONNX Runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use converters::Model;
use converters::ir::model::sha256_file;
use reports::schema::richness::LeakyBody;
use reports::schema::{FileRef, Record};

use super::args::{DataArgs, OutputArgs, RuntimeArgs};
use super::richness::record_provenance;
use crate::analysis::leaky::{LeakyOptions, build_decomposition, decompose};
use crate::analysis::richness::data_input;
use crate::analysis::richness::source::open_source;
use crate::data::Split;

#[derive(Debug, clap::Args)]
pub struct LeakyArgs {
    /// A model whose activations are LeakyRelu (e.g. from `ratio-convert --leaky A`).
    pub model: PathBuf,
    /// The LeakyRelu slope; must match the model's (read from the model when left out).
    #[arg(long)]
    pub alpha: Option<f32>,
    #[command(flatten)]
    pub input: DataArgs,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Enumerate all 2^L subnetworks up to this many LeakyRelu layers; sample above.
    #[arg(long, default_value_t = 12)]
    pub max_exact: usize,
    /// Subnetworks run per k when sampling.
    #[arg(long, default_value_t = 16)]
    pub subsets_per_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub record: OutputArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn run(args: LeakyArgs) -> Result<ExitCode> {
    let model = Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let sha = sha256_file(&args.model)?;
    let dec = build_decomposition(&model, args.alpha)?;
    let (input, _) = data_input(&model)?;
    let dims = model.input_dims(&input);
    let source = open_source(
        &args.input.data,
        &args.input.preset,
        args.split,
        args.batch,
        args.samples,
        &input,
        &dims,
    )?;
    let data = source.data.clone();
    let config = args.runtime.config();
    let opts = LeakyOptions {
        samples: args.samples,
        max_exact: args.max_exact,
        subsets_per_k: args.subsets_per_k,
        seed: args.seed,
    };
    let mut body: LeakyBody = decompose(&dec, source, &opts, &config)?;
    body.sha256 = sha.clone();
    body.data = Some(data.clone());
    let provenance = record_provenance(
        args.runtime.device,
        &crate::runtime::ensure_ort()?,
        [
            ("seed", serde_json::json!(args.seed)),
            ("data_sha256", serde_json::json!(data.sha256)),
            ("preset_fingerprint", serde_json::json!(data.preset_fingerprint)),
        ],
    );
    let mut record = crate::commands::record(&body, provenance)?;
    record.inputs = vec![FileRef {
        path: args.model.display().to_string(),
        sha256: sha,
    }];
    if !args.record.to_stdout() {
        print_table(&body, &record);
    }
    args.record.write(&record)?;
    Ok(ExitCode::SUCCESS)
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

fn print_table(b: &LeakyBody, record: &Record) {
    crate::outln!(
        "{} (sha256 {}): {} LeakyRelu layers, alpha {}, {} over {} samples; leaky top-1 {}",
        b.model,
        &b.sha256[..b.sha256.len().min(12)],
        b.layers.len(),
        b.alpha,
        if b.exact {
            "exact enumeration"
        } else {
            "sampled subnetworks"
        },
        b.samples,
        opt(b.leaky_accuracy)
    );
    crate::outln!(
        "{:>3} {:>8} {:>6} {:>10} {:>12} {:>9} {:>11} {:>12}",
        "k",
        "subsets",
        "run",
        "weight",
        "mean |G_k|",
        "group acc",
        "partial acc",
        "partial err"
    );
    for g in &b.groups {
        crate::outln!(
            "{:>3} {:>8} {:>6} {:>10.6} {:>12.5} {:>9} {:>11} {:>12.3e}",
            g.k,
            g.subsets,
            g.evaluated,
            g.weight,
            g.mean_norm,
            opt(g.group_accuracy),
            opt(g.partial_accuracy),
            g.partial_rel_error
        );
    }
    crate::outln!(
        "reconstruction: relative error {:.3e}, max abs error {:.3e}",
        b.reconstruction_rel_error,
        b.max_abs_error
    );
    let p = &record.provenance;
    if let Some(d) = &b.data {
        crate::outln!(
            "data {} ({}, sha256 {}), preset {} [{}]; ORT {}, {}, {}",
            d.path,
            d.split.as_deref().unwrap_or("-"),
            &d.sha256[..d.sha256.len().min(12)],
            d.preset,
            &d.preset_fingerprint[..d.preset_fingerprint.len().min(12)],
            p.ort_version.as_deref().unwrap_or("?"),
            p.device_label(),
            p.machine.describe()
        );
    }
}
