//! `ratio richness` speed on the pretrained MNIST CNN: every metric for every layer over the 10 000 MNIST test
//! images (target: under 60 s on the 2-core dev machine), and the capture overhead over plain inference.
//!
//! A single timed pass, not criterion sampling (one pass takes seconds): batches are decoded first so only the
//! model runs and the statistics are timed. `cargo bench -p ratio-benches --bench richness [-- SAMPLES]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use converters::Model;
use toolkit::analysis::richness::source::open_source;
use toolkit::analysis::richness::{Batch, LayerSelect, ModelCapture, RichnessOptions, analyze};
use toolkit::data::Split;
use toolkit::runtime::{Feed, Runner, RuntimeConfig};

fn shared(rel: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("shared/{rel} not found above {}", here.display()))
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
    let start = Instant::now();
    for b in &batches {
        plain.run(&[("input", Feed::F32(b.x.view()))])?;
    }
    let t_plain = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut caps = [ModelCapture::new(&model, sha.clone(), &LayerSelect::Auto, &config)?];
    let opts = RichnessOptions {
        samples,
        ..Default::default()
    };
    let run = analyze(&mut caps, batches.iter().cloned().map(Ok), &opts)?;
    let t_total = start.elapsed().as_secs_f64();
    let m = &run.models[0];

    let machine = toolkit::provenance::Machine::detect();
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
    println!("  plain inference            {t_plain:8.2} s");
    println!(
        "  inference with capture     {:8.2} s  (overhead x{:.2})",
        m.run_seconds,
        m.run_seconds / t_plain
    );
    println!("  statistics (all metrics)   {:8.2} s", m.stats_seconds);
    println!(
        "  total richness wall time   {t_total:8.2} s  (target < 60 s: {})",
        if t_total < 60.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
