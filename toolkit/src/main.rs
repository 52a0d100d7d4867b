//! `ratio`: parse, dispatch, and render errors with their causes (uv/ripgrep style).

use std::process::ExitCode;

use clap::Parser;
use toolkit::cli::{Cli, Command};
use toolkit::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = &cli.global;
    toolkit::printer::configure(g.quiet, g.verbose, !g.no_progress);
    let result = match cli.command {
        Command::Bench(a) => commands::bench::run(a),
        Command::Calibrate(a) => commands::calibrate::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Finetune(a) => commands::finetune::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::BenchTrain(a) => commands::train::run_bench(a),
        Command::Model(a) => commands::model::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Data(a) => commands::data::run(a),
        Command::Richness(a) => commands::richness::run(a),
        Command::Leaky(a) => commands::leaky::run(a),
        Command::Sweep(a) => commands::sweep::run(a),
        Command::Report(a) => commands::report::run(a),
    };
    toolkit::commands::finish(result)
}
