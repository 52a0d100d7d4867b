//! The training loop on real data: digits reaches the accuracy, `--resume` is exact, divergence and bad
//! input give clear errors without overwriting anything.

use std::path::{Path, PathBuf};

use converters::Model;
use converters::autodiff::Optimizer;
use models::config::ModelConfig;
use models::plain::{PlainConfig, plain_cnn};
use toolkit::runtime::RuntimeConfig;
use toolkit::train::data::{Preset, TensorSet, load};
use toolkit::train::{TrainOptions, train};

/// `shared/` holds the real data; it sits beside the checkout (or one of its ancestors, for worktrees).
fn shared(rel: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("shared/{rel} not found above {}", here.display()))
}

fn digits() -> (TensorSet, TensorSet) {
    load(&shared("data/digits.csv.gz"), Preset::Digits).unwrap()
}

fn plain_digits(seed: u64) -> Model {
    let cfg = PlainConfig::new(ModelConfig::new(1, 8, 10).with_seed(seed));
    Model::new(plain_cnn(&cfg).unwrap())
}

fn opts(dir: &Path) -> TrainOptions {
    let mut o = TrainOptions::new(dir.to_path_buf());
    o.batch = 32;
    o.lr = 0.05;
    o.optimizer = Optimizer::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 5e-4,
    };
    o.runtime = RuntimeConfig::cpu().with_threads(1);
    o.progress = false;
    o
}

#[test]
fn plain_cnn_learns_digits_to_95_percent() {
    let (tr, te) = digits();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.epochs = 6;
    let out = train(&plain_digits(1), &tr, &te, &o).unwrap();
    eprintln!(
        "digits: initial {:?}, final {:.4}, best {:.4}, {:.1}s",
        out.initial_val_acc, out.final_val_acc, out.best_val_acc, out.seconds
    );
    assert!(out.initial_val_acc.unwrap() < 0.3, "an untrained net should be near chance");
    assert!(out.final_val_acc >= 0.95, "test accuracy {:.4} < 0.95", out.final_val_acc);
    // The written inference model loads and scores what the loop measured.
    let m = Model::load(&out.model_path).unwrap();
    let acc = toolkit::train::eval::accuracy(&m, &te, &RuntimeConfig::cpu(), 128).unwrap();
    assert_eq!(acc, out.final_val_acc);
    assert!(m.metadata("ratio.finetune.source_sha256").is_some());
    let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1 + 6);
}
