//! Which NCHWc block ONNX Runtime's CPU kernels use on this machine, found by asking ORT itself.
//!
//! [`converters::passes::nchwc`] reorders live weights into MLAS's blocked filter layout, whose block (8 with
//! AVX2, 16 with AVX-512) depends on the CPU MLAS dispatches to. A wrong block gives wrong numbers, not an error,
//! so the block is not guessed from CPU flags: one 3×3 convolution with 16 channels is run plain and lowered with
//! each candidate block, and the block whose result matches is used. `RATIO_NCHWC=0` or
//! [`RuntimeConfig::plain_convs`] turns the lowering off.

use std::sync::OnceLock;

use converters::ir::build::{self, Attr};
use converters::proto::tensor_proto::DataType;
use ndarray::{ArrayD, IxDyn};

use super::{Device, Feed, Runner, RuntimeConfig};

/// Blocks MLAS uses on some CPU, largest first.
const CANDIDATES: [i64; 2] = [16, 8];
const CHANNELS: i64 = 16;
const SIDE: i64 = 6;

/// The NCHWc block for train-step sessions under `config`: `None` off the CPU EP, with `plain_convs` or
/// `RATIO_NCHWC=0`, or when no candidate reproduces a plain Conv here. Probed once per process.
pub fn block(config: &RuntimeConfig) -> Option<i64> {
    if config.device != Device::Cpu || config.plain_convs || std::env::var("RATIO_NCHWC").is_ok_and(|v| v == "0") {
        return None;
    }
    static BLOCK: OnceLock<Option<i64>> = OnceLock::new();
    *BLOCK.get_or_init(probe)
}

fn probe() -> Option<i64> {
    let plain = converters::Model::new(probe_model());
    let feeds = probe_feeds();
    let run = |model: &converters::Model| -> Option<ArrayD<f32>> {
        let config = RuntimeConfig {
            intra_threads: Some(1),
            ..RuntimeConfig::cpu()
        };
        let mut runner = Runner::from_model(model, &config).ok()?;
        let f: Vec<(&str, Feed<'_>)> = feeds.iter().map(|(n, a)| (*n, Feed::F32(a.view()))).collect();
        runner.run(&f).ok()?.take("y").ok()
    };
    let reference = run(&plain)?;
    CANDIDATES.into_iter().find(|&b| {
        let mut lowered = plain.clone();
        matches!(converters::passes::nchwc::lower_convs(&mut lowered, b), Ok(1))
            && run(&lowered).is_some_and(|y| close(&y, &reference))
    })
}

fn probe_model() -> converters::proto::ModelProto {
    let (c, s) = (CHANNELS, SIDE);
    let conv = build::node(
        "Conv",
        "probe",
        &["x", "w"],
        &["y"],
        vec![
            ("pads", Attr::Ints(vec![1; 4])),
            ("kernel_shape", Attr::Ints(vec![3, 3])),
        ],
    );
    let graph = converters::proto::GraphProto {
        name: Some("nchwc_probe".into()),
        node: vec![conv],
        input: vec![
            build::value_info("x", DataType::Float, &[Some(1), Some(c), Some(s), Some(s)]),
            build::value_info("w", DataType::Float, &[Some(c), Some(c), Some(3), Some(3)]),
        ],
        output: vec![build::value_info(
            "y",
            DataType::Float,
            &[Some(1), Some(c), Some(s), Some(s)],
        )],
        ..Default::default()
    };
    build::model(graph, "ratio-nchwc-probe")
}

/// Inputs whose every channel and weight differ, so a block that mixes channels up cannot match by chance.
fn probe_feeds() -> Vec<(&'static str, ArrayD<f32>)> {
    let (c, s) = (CHANNELS as usize, SIDE as usize);
    let wave = |i: usize| ((i * 7919 % 1009) as f32 / 1009.0) - 0.5;
    let x = ArrayD::from_shape_fn(IxDyn(&[1, c, s, s]), |d| wave(d[1] * 97 + d[2] * 13 + d[3]));
    let w = ArrayD::from_shape_fn(IxDyn(&[c, c, 3, 3]), |d| {
        wave(d[0] * 389 + d[1] * 31 + d[2] * 3 + d[3] + 5)
    });
    vec![("x", x), ("w", w)]
}

fn close(a: &ArrayD<f32>, b: &ArrayD<f32>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()))
}
