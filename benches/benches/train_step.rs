//! ResNet-20 (CIFAR-shaped 3×32×32, 10 classes) train step at batch 128 on 2 threads: median step time,
//! images/s, step/inference ratio and peak RSS, as one JSON record with provenance.
//! `cargo bench -p ratio-benches --bench train_step` (or, without a release build, `ratio bench-train`).
//! Each step takes about a second, so this is a plain timed loop rather than a criterion group.

use converters::Model;
use converters::autodiff::DwStrategy;
use models::config::ModelConfig;
use toolkit::runtime::RuntimeConfig;
use toolkit::train::bench::bench_train_step;

fn main() {
    let iters = std::env::var("RATIO_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let proto = models::registry::by_name("resnet20", &ModelConfig::default()).expect("resnet20 builds");
    let mut model = Model::new(proto);
    model.path = Some("resnet20(3x32x32)".into());
    let rt = RuntimeConfig::cpu().with_threads(2);
    for (name, dw) in [
        ("auto", DwStrategy::Auto),
        ("transposed_conv", DwStrategy::TransposedConv),
    ] {
        let r = bench_train_step(&model, 128, iters, &rt, dw, None).expect("bench runs");
        println!(
            "cpu_f32_resnet20_b128_t2_dw_{name}: {}",
            serde_json::to_string(&r).expect("json")
        );
    }
}
