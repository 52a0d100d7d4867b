//! `ratio-convert model.onnx --ratio 2:1`: the converter as its own command, same flags as `ratio convert`.

use std::process::ExitCode;

use clap::Parser;
use toolkit::commands::convert::{self, ConvertArgs};

#[derive(Debug, Parser)]
#[command(
    name = "ratio-convert",
    version,
    about = "Turn a 1:1 ONNX model into an N:M conv:ReLU variant"
)]
struct Cli {
    #[command(flatten)]
    args: ConvertArgs,
}

fn main() -> ExitCode {
    toolkit::commands::finish(convert::run(Cli::parse().args))
}
