//! The streamed training path on an image folder written from real MNIST digits (mixed sizes, PNG and JPEG):
//! RandomResizedCrop + flip + jitter batches are seeded per (seed, epoch, position), `--resume` continues bit
//! for bit, validation uses the preset alone, the data wait is recorded, the export hook shapes every model the
//! loop validates and writes, and the CLI flags reach the loop or fail clearly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use converters::Model;
use converters::autodiff::Optimizer;
use models::config::ModelConfig;
use models::plain::{PlainConfig, plain_cnn};
use ratio_testkit::{Run, shared};
use toolkit::data::{OpenOptions, Pixels, Split};
use toolkit::runtime::RuntimeConfig;
use toolkit::train::augment::{Augment, ColorJitter, RandomResizedCrop};
use toolkit::train::data::{DataSpec, SampleSet, load};
use toolkit::train::{Residency, TrainOptions, train};

/// `root/<digit>/<i>.{png,jpg}` from the first `n` MNIST test digits; every third image is upscaled to 34×30
/// so the folder is ragged like a real one.
fn digit_folder(root: &Path, n: usize) {
    let mnist = shared("data/mnist");
    let ds = toolkit::data::open(
        mnist.to_str().unwrap(),
        &OpenOptions {
            format: None,
            split: Split::Test,
        },
    )
    .unwrap();
    for i in 0..n {
        let s = ds.sample(i).unwrap();
        let Pixels::U8(px) = s.image.pixels else {
            panic!("MNIST is 8-bit")
        };
        let mut img = image::GrayImage::from_raw(28, 28, px).unwrap();
        if i % 3 == 0 {
            img = image::imageops::resize(&img, 30, 34, image::imageops::FilterType::Triangle);
        }
        let dir = root.join(s.label.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let ext = if i % 2 == 0 { "png" } else { "jpg" };
        img.save(dir.join(format!("{i:04}.{ext}"))).unwrap();
    }
}

/// Grayscale, resized to 28×28 for validation, MNIST's normalisation.
fn preset_file(dir: &Path) -> PathBuf {
    let p = dir.join("gray28.json");
    std::fs::write(
        &p,
        r#"{"name": "gray28", "grayscale": true, "resize": {"to": {"exact": [28, 28]}, "filter": "bilinear"},
            "scale": 0.00392156862745098, "mean": [0.1307], "std": [0.3081]}"#,
    )
    .unwrap();
    p
}

fn folder_sets(root: &Path, preset: &Path) -> (SampleSet, SampleSet) {
    load(&DataSpec::new(root.to_str().unwrap(), preset.to_str().unwrap()).unwrap()).unwrap()
}

fn model() -> Model {
    Model::new(plain_cnn(&PlainConfig::new(ModelConfig::new(1, 28, 10).with_seed(11))).unwrap())
}

fn augment() -> Augment {
    Augment {
        hflip: true,
        random_resized_crop: Some(RandomResizedCrop::new(28)),
        jitter: ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
        },
        ..Augment::default()
    }
}

fn opts(dir: &Path) -> TrainOptions {
    let mut o = TrainOptions::new(dir.to_path_buf());
    o.epochs = 2;
    o.batch = 16;
    o.lr = 3e-3;
    o.optimizer = Optimizer::Adamw {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-2,
    };
    o.schedule = toolkit::train::schedule::ScheduleKind::Cosine;
    o.augment = augment();
    o.train_acc_every = 3;
    o.runtime = RuntimeConfig::cpu().with_threads(1);
    o.progress = false;
    o
}

#[test]
fn augmented_batches_are_seeded_per_epoch_and_position_and_validation_uses_the_preset() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("digits");
    digit_folder(&root, 60);
    let (tr, va) = folder_sets(&root, &preset_file(tmp.path()));
    assert_eq!((tr.len(), va.len()), (48, 12));
    assert_eq!(tr.sample_shape, [1, 28, 28]);
    let aug = augment();
    let pos: Vec<usize> = (0..8).collect();
    let a = tr.train_batch(&pos, &aug, 5, 0, 0).unwrap();
    assert_eq!(
        a,
        tr.train_batch(&pos, &aug, 5, 0, 0).unwrap(),
        "same (seed, epoch, position)"
    );
    assert_ne!(
        a.0,
        tr.train_batch(&pos, &aug, 5, 1, 0).unwrap().0,
        "another epoch draws other crops"
    );
    assert_ne!(
        a.0,
        tr.train_batch(&pos, &aug, 5, 0, 8).unwrap().0,
        "another position too"
    );
    // The evaluation view is the preset alone, and equals what `ratio eval` computes for the same file.
    let (ev, labels) = tr.batch(&pos).unwrap();
    assert_eq!(labels, a.1);
    assert_ne!(ev, a.0);
    let preset = toolkit::data::preprocess::Preset::load(tmp.path().join("gray28.json").to_str().unwrap()).unwrap();
    let batch = toolkit::data::loader::load_batch(
        tr.dataset().as_ref(),
        &preset,
        &[tr.index(3)],
        toolkit::data::loader::OnCorrupt::Fail,
    )
    .unwrap();
    assert_eq!(batch.data, ev[3 * 784..4 * 784]);
}

#[test]
fn streamed_resume_continues_bit_identically_and_records_the_data_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("digits");
    digit_folder(&root, 100);
    let (tr, va) = folder_sets(&root, &preset_file(tmp.path()));
    let m = model();
    for residency in [Residency::Device, Residency::Host] {
        let straight = tmp.path().join(format!("straight-{residency:?}"));
        let mut a = opts(&straight);
        a.residency = residency;
        let ra = train(&m, &tr, &va, &a).unwrap();

        let split = tmp.path().join(format!("split-{residency:?}"));
        let mut b = opts(&split);
        b.residency = residency;
        b.stop_after = Some(1);
        train(&m, &tr, &va, &b).unwrap();
        b.stop_after = None;
        b.resume = Some(split.join("last.ckpt"));
        let rb = train(&m, &tr, &va, &b).unwrap();

        let (ha, sa) = toolkit::train::checkpoint::load(&straight.join("last.ckpt")).unwrap();
        let (hb, sb) = toolkit::train::checkpoint::load(&split.join("last.ckpt")).unwrap();
        assert_eq!(ha, hb);
        assert_eq!(sa, sb, "{residency:?}: weights after 2 epochs differ from 1 + resume 1");
        assert_eq!(
            std::fs::read(&ra.model_path).unwrap(),
            std::fs::read(&rb.model_path).unwrap()
        );
        // 80 training images, batch 16: 5 steps, logits read on steps 0 and 3.
        let e = &ra.epochs[1];
        assert_eq!((e.steps, e.train_acc_samples), (10, 32));
        assert!((0.0..=1.0).contains(&e.data_wait_fraction) && e.data_wait_s <= e.seconds);
        assert!(e.step_s > 0.0 && e.step_s <= e.seconds);
        let lines = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
        let rec: serde_json::Value = lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["kind"] == "epoch")
            .expect("an epoch line in metrics.jsonl");
        assert!(rec["record"]["data_wait_fraction"].is_f64(), "{rec}");
        assert_eq!(ra.identity.residency, residency);
    }
    // Both residencies train the same numbers (bit for bit on one CPU thread).
    let (_, dev) = toolkit::train::checkpoint::load(&tmp.path().join("straight-Device/last.ckpt")).unwrap();
    let (_, host) = toolkit::train::checkpoint::load(&tmp.path().join("straight-Host/last.ckpt")).unwrap();
    assert_eq!(dev, host);
}

#[test]
fn the_export_hook_shapes_every_validated_and_written_model() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("digits");
    digit_folder(&root, 60);
    let (tr, va) = folder_sets(&root, &preset_file(tmp.path()));
    let m = model();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut o = opts(&tmp.path().join("hooked"));
    o.lr = 0.05;
    // A hook that throws the training away: every validation must then score the untrained model, and the
    // written models must be it, while the checkpoint holds the trained weights.
    let (untrained, seen) = (m.clone(), Arc::clone(&calls));
    o.export = Some(Arc::new(move |_trained: &Model| {
        seen.fetch_add(1, Ordering::SeqCst);
        let mut u = untrained.clone();
        u.set_metadata("test.hooked", "1".to_string());
        Ok(u)
    }));
    let r = train(&m, &tr, &va, &o).unwrap();
    // Initial validation, one per epoch, and the final export.
    assert_eq!(calls.load(Ordering::SeqCst), 1 + 2 + 1);
    let initial = r.initial_val_acc.unwrap();
    assert!(r.epochs.iter().all(|e| e.val_acc == initial), "{:?}", r.epochs);
    for p in [&r.model_path, &r.best_model_path] {
        let written = Model::load(p).unwrap();
        assert_eq!(written.metadata("test.hooked"), Some("1"), "{}", p.display());
        assert_eq!(written.graph().initializer, m.graph().initializer);
    }
    let (_, state) = toolkit::train::checkpoint::load(&r.last_checkpoint).unwrap();
    let first: Vec<f32> = state[0].iter().copied().collect();
    let step = converters::autodiff::build_train_step(
        &m,
        &converters::autodiff::TrainStepConfig {
            batch_size: 16,
            optimizer: o.optimizer,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(first, step.state[0].init, "the checkpoint keeps the trained weights");
}

fn ratio(args: &[&str]) -> Run {
    ratio_testkit::ratio!()
        .args(args)
        .args(["--threads", "1", "--no-progress"])
        .run()
}

#[test]
fn finetune_flags_reach_the_loop_and_bad_combinations_fail_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("digits");
    digit_folder(&root, 60);
    let preset = preset_file(tmp.path());
    let model_path = tmp.path().join("plain28.onnx");
    model().save(&model_path, false).unwrap();
    let s = |p: &Path| p.display().to_string();
    let (m, d, p) = (s(&model_path), s(&root), s(&preset));
    let base = |out: &str| -> Vec<String> {
        [
            "finetune", &m, "--data", &d, "--preset", &p, "--batch", "16", "--lr", "0.01", "-o", out,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let out = s(&tmp.path().join("ok"));
    let mut args = base(&out);
    args.extend(
        [
            "--random-resized-crop",
            "28",
            "--rrc-scale",
            "0.5,1",
            "--hflip",
            "--brightness",
            "0.3",
            "--state",
            "host",
            "--train-acc-every",
            "1",
            "--json",
            "-",
        ]
        .map(String::from),
    );
    let o = ratio(&args.iter().map(String::as_str).collect::<Vec<_>>());
    o.success();
    let r = o.json();
    let id = &r["body"];
    assert_eq!(id["augment"]["random_resized_crop"]["size"], 28);
    assert_eq!(
        id["augment"]["random_resized_crop"]["scale"],
        serde_json::json!([0.5, 1.0])
    );
    assert_eq!(
        id["augment"]["brightness"].as_f64().map(|b| (b * 10.0).round()),
        Some(3.0)
    );
    assert_eq!(id["residency"], "host");
    assert_eq!(id["epochs"][0]["train_acc_samples"], 48);

    let never = tmp.path().join("never");
    for (extra, needle) in [
        (vec!["--random-resized-crop", "24"], "after --random-resized-crop"),
        (
            vec!["--random-resized-crop", "28", "--crop-pad", "2"],
            "--crop-pad and --random-resized-crop",
        ),
        (vec!["--rrc-scale", "0.5"], "expected LO,HI"),
        (
            vec!["--random-resized-crop", "28", "--rrc-scale", "0.9,0.2"],
            "0 < scale lo ≤ hi ≤ 1",
        ),
        (vec!["--contrast=-1"], "strengths must be ≥ 0"),
        (vec!["--train-acc-every", "0"], "--train-acc-every must be at least 1"),
    ] {
        let mut args = base(&s(&never));
        args.extend(extra.iter().map(|a| a.to_string()));
        ratio(&args.iter().map(String::as_str).collect::<Vec<_>>()).fails(&[needle]);
        assert!(!never.exists(), "{extra:?} wrote {}", never.display());
    }
}
