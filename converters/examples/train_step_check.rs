//! Build the train step of each ONNX file given, at batches 2 and 4, and print what it adapted (static batch,
//! untied tensors) or why it cannot train. Nothing runs and nothing is written.
//!
//!     cargo run --release -p converters --example train_step_check -- model.onnx [more.onnx …]

use converters::Model;
use converters::autodiff::{TrainStepConfig, build_train_step, summarize};

fn main() {
    for path in std::env::args().skip(1) {
        let model = match Model::load(&path) {
            Ok(m) => m,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        for batch in [2, 4] {
            let cfg = TrainStepConfig {
                batch_size: batch,
                ..Default::default()
            };
            match build_train_step(&model, &cfg) {
                Ok(step) => {
                    println!("{path} at batch {batch}: trains {} parameters", step.num_params());
                    for line in summarize(&step.adaptations) {
                        println!("  {line}");
                    }
                }
                Err(e) => println!("{path} at batch {batch}: {e}"),
            }
        }
    }
}
