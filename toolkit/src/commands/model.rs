//! `ratio model NAME -o FILE`: write one of the reference networks (`models/`) as ONNX, with seeded weights.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use converters::ir::Model;
use models::ModelConfig;

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// resnet20, resnet56, vgg, densenet, plain or resnet50.
    pub name: String,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub channels: i64,
    #[arg(long, default_value_t = 32)]
    pub input_size: i64,
    #[arg(long, default_value_t = 10)]
    pub classes: i64,
    /// Width multiplier of every hidden layer.
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fold BatchNormalization into the preceding convolutions (the deployed form).
    #[arg(long)]
    pub fold_bn: bool,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: ModelArgs) -> Result<ExitCode> {
    if args.output.exists() && !args.force {
        anyhow::bail!("{}: output exists; pass --force to overwrite", args.output.display());
    }
    let cfg = ModelConfig {
        width: args.width,
        seed: args.seed,
        ..ModelConfig::new(args.channels, args.input_size, args.classes)
    };
    let mut proto = models::by_name(&args.name, &cfg)?;
    if args.fold_bn {
        proto = models::fold_bn(&proto)?;
    }
    let m = Model::new(proto);
    m.save(&args.output, false)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} parameters)",
        args.output.display(),
        models::stats::param_count(&m.proto)
    );
    Ok(ExitCode::SUCCESS)
}
