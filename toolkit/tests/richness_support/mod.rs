//! Shared by the richness and leaky tests: the real MNIST test set and checkpoint from ../shared.

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;

use converters::Model;
use ndarray::Array4;
pub use ratio_testkit::shared;
use toolkit::analysis::richness::Batch;
use toolkit::runtime::RuntimeConfig;

/// One intra-op thread: the machine is shared, and results must not depend on the thread count.
pub fn cfg() -> RuntimeConfig {
    RuntimeConfig::cpu().with_threads(1)
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The first `n` MNIST test images with the checkpoint's preprocessing: x/255, then (x − 0.1307)/0.3081.
pub fn mnist_test(n: usize) -> (Vec<f32>, Vec<u32>) {
    mnist("t10k", n)
}

/// The first `n` MNIST training images, preprocessed like [`mnist_test`].
pub fn mnist_train(n: usize) -> (Vec<f32>, Vec<u32>) {
    mnist("train", n)
}

fn mnist(split: &str, n: usize) -> (Vec<f32>, Vec<u32>) {
    let images = gunzip(&shared(&format!("data/mnist/{split}-images.idx3-ubyte.gz")));
    let labels = gunzip(&shared(&format!("data/mnist/{split}-labels.idx1-ubyte.gz")));
    assert_eq!(&images[..4], &[0, 0, 8, 3]);
    let x = images[16..16 + n * 784]
        .iter()
        .map(|&p| (p as f32 / 255.0 - 0.1307) / 0.3081)
        .collect();
    let y = labels[8..8 + n].iter().map(|&l| l as u32).collect();
    (x, y)
}

pub fn batches(x: &[f32], y: &[u32], size: usize) -> Vec<anyhow::Result<Batch>> {
    x.chunks(size * 784)
        .zip(y.chunks(size))
        .map(|(xs, ys)| {
            Ok(Batch {
                x: Array4::from_shape_vec((ys.len(), 1, 28, 28), xs.to_vec())
                    .unwrap()
                    .into_dyn(),
                labels: Some(ys.to_vec()),
            })
        })
        .collect()
}

/// Top-1 of `model` on the given preprocessed MNIST images.
pub fn accuracy(model: &Model, x: &[f32], y: &[u32]) -> f64 {
    let mut r = toolkit::runtime::Runner::from_model(model, &cfg()).unwrap();
    let mut correct = 0usize;
    for b in batches(x, y, 500) {
        let b = b.unwrap();
        let out = r.run(&[("input", toolkit::runtime::Feed::F32(b.x.view()))]).unwrap();
        let logits = out.get("logits").unwrap();
        for (row, &l) in logits.outer_iter().zip(b.labels.as_ref().unwrap()) {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap();
            correct += usize::from(best == l as usize);
        }
    }
    correct as f64 / y.len() as f64
}

pub fn mnist_model() -> Model {
    Model::load(shared("models/mnist_cnn.onnx")).unwrap()
}
