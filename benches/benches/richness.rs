//! `ratio richness` speed on the pretrained MNIST CNN: every metric for every layer over the 10 000 MNIST test
//! images (target: under 60 s on the 2-core dev machine), and the capture overhead over plain inference.
//!
//! A single timed pass, not criterion sampling (one pass takes seconds): batches are decoded first so only the
//! model runs and the statistics are timed. `cargo bench -p ratio-benches --bench richness [-- SAMPLES]`.

use std::time::Instant;

use converters::Model;
use ratio_testkit::shared;
use toolkit::analysis::richness::source::open_source;
use toolkit::analysis::richness::{Batch, LayerSelect, ModelCapture, RichnessOptions, analyze};
use toolkit::data::Split;
use toolkit::runtime::{Feed, Runner, RuntimeConfig};

/// CPU seconds (user + system) this process has used: on a shared, oversubscribed machine wall time mostly
/// measures the neighbours, CPU time measures the work. /proc/self/stat fields 14–15, in clock ticks (100 Hz).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> anyhow::Result<()> {
    let samples: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let model_path = shared("models/mnist_cnn.onnx");
    let data_path = shared("data/mnist");
    let model = Model::load(&model_path)?;
    let sha = converters::ir::model::sha256_file(&model_path)?;
    let dims = [None, Some(1), Some(28), Some(28)];
    let source = open_source(
        &data_path.display().to_string(),
        "mnist",
        Split::Test,
        500,
        samples,
        "input",
        &dims,
    )?;
    let data = source.data.clone();
    let batches: Vec<Batch> = source.collect::<anyhow::Result<_>>()?;
    let config = RuntimeConfig::cpu();

    // Plain inference: the model's own output only.
    let mut plain = Runner::from_path(&model_path, &config)?;
    let load_before = load_average();
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    for b in &batches {
        plain.run(&[("input", Feed::F32(b.x.view()))])?;
    }
    let t_plain = start.elapsed().as_secs_f64();
    let cpu_plain = cpu_seconds() - cpu0;

    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let mut caps = [ModelCapture::new(&model, sha.clone(), &LayerSelect::Auto, &config)?];
    let opts = RichnessOptions {
        samples,
        ..Default::default()
    };
    let run = analyze(&mut caps, batches.iter().cloned().map(Ok), &opts)?;
    let t_total = start.elapsed().as_secs_f64();
    let cpu_total = cpu_seconds() - cpu0;
    let m = &run.models[0];

    let machine = toolkit::provenance::detect_machine();
    println!("richness bench: mnist_cnn.onnx (sha256 {sha})");
    println!(
        "  data {} ({}, sha256 {}), preset {} [{}], seed {}",
        data.path,
        data.split.as_deref().unwrap_or("-"),
        data.sha256,
        data.preset,
        data.preset_fingerprint,
        opts.seed
    );
    println!(
        "  machine {} ({}, {} cpus), ORT {}, CPU EP, default threads",
        machine.hostname,
        machine.cpu_model,
        machine.cores,
        plain.ort_version()
    );
    println!(
        "  samples {}, layers {}, top-1 {:.4}",
        run.samples,
        m.layers.len(),
        m.accuracy.unwrap_or(f64::NAN)
    );
    println!("  load average before: {load_before}; after: {}", load_average());
    println!("  plain inference            {t_plain:8.2} s wall  {cpu_plain:8.2} s CPU");
    println!(
        "  inference with capture     {:8.2} s  (overhead x{:.2})",
        m.run_seconds,
        m.run_seconds / t_plain
    );
    println!("  statistics (all metrics)   {:8.2} s", m.stats_seconds);
    println!(
        "  total richness             {t_total:8.2} s wall  {cpu_total:8.2} s CPU  (target < 60 s wall: {})",
        if t_total < 60.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
