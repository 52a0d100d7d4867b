//! How long building the reference models takes (the converter speed bench needs ResNet-50-like "well under a
//! second"), and BN folding on the largest one. Pure CPU, single thread; run with `cargo bench -p models`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use models::{ModelConfig, fold_bn, resnet20, resnet50_like};

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    let cifar = ModelConfig::default();
    g.bench_function(BenchmarkId::new("resnet20", "3x32x32_c10"), |b| {
        b.iter(|| resnet20(&cifar).unwrap())
    });
    let imagenet = ModelConfig::new(3, 224, 1000);
    // ~25.6M f32 weights drawn and encoded per build.
    g.throughput(Throughput::Bytes(25_557_032 * 4));
    g.bench_function(BenchmarkId::new("resnet50_like", "3x224x224_c1000"), |b| {
        b.iter(|| resnet50_like(&imagenet).unwrap())
    });
    let m = resnet50_like(&imagenet.with_random_bn_stats(true)).unwrap();
    g.bench_function(BenchmarkId::new("fold_bn", "resnet50_like"), |b| {
        b.iter(|| fold_bn(&m).unwrap())
    });
    g.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
