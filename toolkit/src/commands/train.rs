//! `ratio train --model resnet20 --data … --preset …`: train a reference network from the `models` builders
//! from scratch with the same loop as `ratio finetune` (the paper's experiment).

use std::process::ExitCode;

use anyhow::{Context, Result};
use converters::Model;
use models::config::ModelConfig;

use crate::commands::finetune::{LoopArgs, report};
use crate::train::train;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Reference network: resnet20, resnet56, vgg, densenet, plain, resnet50.
    #[arg(long)]
    pub model: String,
    /// Width multiplier of the network.
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    pub init_seed: u64,
    #[command(flatten)]
    pub run: LoopArgs,
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let (tr, te) = args.run.load_data()?;
    let [c, h, w] = tr.sample_shape;
    anyhow::ensure!(h == w, "{}: {h}×{w} images; the reference builders need square inputs", tr.info.path);
    let cfg = ModelConfig::new(c as i64, h as i64, tr.classes as i64)
        .with_seed(args.init_seed)
        .with_width(args.width);
    let proto = models::registry::by_name(&args.model, &cfg).with_context(|| format!("building {}", args.model))?;
    let mut model = Model::new(proto);
    model.path = Some(format!("{}(width={}, init_seed={})", args.model, args.width, args.init_seed).into());
    let outcome = train(&model, &tr, &te, &args.run.options())?;
    report(&outcome, args.run.json)?;
    Ok(ExitCode::SUCCESS)
}
