//! `Runner::run` on the shared mnist_cnn checkpoint, batch 1 and 64, against the prepared fast path: the session
//! and inputs are built outside the timed closure, so the difference is the cost of checking and wrapping feeds
//! and copying outputs into `ndarray`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use ratio_testkit::shared;
use toolkit::runtime::{Feed, Runner, RuntimeConfig};

fn runner(c: &mut Criterion) {
    // One intra-op thread: comparable across machines and quiet on a shared box.
    let cfg = RuntimeConfig::cpu().with_threads(1);
    let mut r = Runner::from_path(&shared("models/mnist_cnn.onnx"), &cfg).expect("mnist_cnn loads");
    let mut group = c.benchmark_group("cpu_f32_mnist_cnn");
    for batch in [1usize, 64] {
        // Deterministic, non-constant pixels in [0, 1).
        let x = ArrayD::from_shape_fn(IxDyn(&[batch, 1, 28, 28]), |i| {
            ((i[0] * 131 + i[2] * 29 + i[3] * 7) % 97) as f32 / 97.0
        });
        let feeds = [("input", Feed::F32(x.view()))];
        let prepared = r.prepare(&feeds).expect("feeds match the model");
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("run", batch), &batch, |b, _| {
            b.iter(|| black_box(r.run(&feeds).expect("run")))
        });
        group.bench_with_input(BenchmarkId::new("prepared", batch), &batch, |b, _| {
            b.iter(|| black_box(r.time_prepared(&prepared).expect("run")))
        });
    }
    group.finish();
}

criterion_group!(benches, runner);
criterion_main!(benches);
