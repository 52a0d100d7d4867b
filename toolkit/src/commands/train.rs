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
    if args.run.bn == super::finetune::BnArg::Reinsert {
        anyhow::bail!(
            "--bn reinsert is for `ratio finetune` of a BN-folded model; the reference networks keep BN (use --bn train)"
        );
    }
    let (tr, te) = args.run.load_data()?;
    let [c, h, w] = tr.sample_shape;
    anyhow::ensure!(
        h == w,
        "{}: {h}×{w} images; the reference builders need square inputs",
        tr.info.path
    );
    let cfg = ModelConfig::new(c as i64, h as i64, tr.classes as i64)
        .with_seed(args.init_seed)
        .with_width(args.width);
    let proto = models::registry::by_name(&args.model, &cfg).with_context(|| format!("building {}", args.model))?;
    let mut model = Model::new(proto);
    model.path = Some(format!("{}(width={}, init_seed={})", args.model, args.width, args.init_seed).into());
    let outcome = train(&model, &tr, &te, &args.run.options())?;
    report(&outcome, None, &args.run.record)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct BenchTrainArgs {
    /// Reference network from the `models` builders, or an ONNX classifier file (`*.onnx`; then --size and
    /// --channels are its own), e.g. one exported with the same weights as a PyTorch model to compare against.
    #[arg(long, default_value = "resnet20")]
    pub model: String,
    /// Input size (square) and channels, CIFAR-shaped by default.
    #[arg(long, default_value_t = 32)]
    pub size: i64,
    #[arg(long, default_value_t = 3)]
    pub channels: i64,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// dW formulation: auto (im2col + one batched MatMul for ungrouped convs) or transposed (Conv over transposed
    /// tensors).
    #[arg(long, default_value = "auto")]
    pub dw: String,
    #[arg(long, default_value = "cpu")]
    pub device: crate::runtime::Device,
    /// Keep the train step's convolutions on ORT's plain CPU kernels (by default they run on its NCHWc kernels,
    /// with the weights reordered in the graph): for before/after comparisons.
    #[arg(long)]
    pub plain_convs: bool,
    /// Also write the train-step graph here (ONNX; time or profile it alone with `ratio bench FILE --profile`).
    #[arg(long, value_name = "FILE")]
    pub emit_graph: Option<std::path::PathBuf>,
}

/// `ratio bench-train`: one JSON record of train-step vs inference time and peak RSS.
pub fn run_bench(args: BenchTrainArgs) -> Result<ExitCode> {
    let dw = match args.dw.as_str() {
        "auto" => converters::autodiff::DwStrategy::Auto,
        "transposed" => converters::autodiff::DwStrategy::TransposedConv,
        other => anyhow::bail!("unknown --dw '{other}' (expected auto or transposed)"),
    };
    let model = if args.model.ends_with(".onnx") {
        Model::load(&args.model)?
    } else {
        let cfg = ModelConfig::new(args.channels, args.size, 10);
        let proto = models::registry::by_name(&args.model, &cfg).with_context(|| format!("building {}", args.model))?;
        let mut model = Model::new(proto);
        model.path = Some(format!("{}({}x{}x{})", args.model, args.channels, args.size, args.size).into());
        model
    };
    let rt = crate::runtime::RuntimeConfig {
        device: args.device,
        intra_threads: Some(args.threads),
        plain_convs: args.plain_convs,
        ..Default::default()
    };
    let r = crate::train::bench::bench_train_step(&model, args.batch, args.iters, &rt, dw, args.emit_graph.as_deref())?;
    crate::outln!("{}", serde_json::to_string_pretty(&r)?);
    Ok(ExitCode::SUCCESS)
}
