//! The recovery check on real data: shared/models/mnist_cnn.onnx (99.06 % on the MNIST test set)
//! converted to 2:1 loses accuracy, and fine-tuning it on part of the MNIST training set with the train-step
//! graph brings it back to ≥ 98.5 % on the full 10k test set.

use converters::Model;
use converters::autodiff::Optimizer;
use converters::convert::convert;
use converters::policy::{Policy, Scope};
use ratio_testkit::shared;
use toolkit::runtime::RuntimeConfig;
use toolkit::train::data::{DataSpec, load};
use toolkit::train::eval::accuracy;
use toolkit::train::{TrainOptions, train};

#[test]
fn mnist_cnn_2_to_1_recovers_by_fine_tuning() {
    let mnist = shared("data/mnist");
    let (tr, te) = load(&DataSpec::new(mnist.to_str().unwrap(), "mnist").unwrap()).unwrap();
    let original = Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let rt = RuntimeConfig::cpu().with_threads(2);
    let base = accuracy(&original, &te, &rt, 500).unwrap();
    assert!((base - 0.9906).abs() < 1e-9, "known answer: 99.06 %, got {base}");

    let policy = Policy {
        scope: Scope::Global,
        protect_stem: false,
        protect_head: false,
        ..Default::default()
    };
    let converted = convert(&original, &policy, None).unwrap().model;
    let relus = |m: &Model| {
        m.graph()
            .node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some("Relu"))
            .count()
    };
    assert_eq!((relus(&original), relus(&converted)), (4, 2));
    let dropped = accuracy(&converted, &te, &rt, 500).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut o = TrainOptions::new(dir.path().to_path_buf());
    o.epochs = 1;
    o.batch = 64;
    o.lr = 0.003;
    o.optimizer = Optimizer::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
    };
    o.train_limit = Some(30_000);
    o.runtime = rt.clone();
    o.progress = false;
    let out = train(&converted, &tr, &te, &o).unwrap();
    eprintln!(
        "mnist 2:1: original {base:.4}, converted {dropped:.4}, fine-tuned {:.4} after {} epoch(s) on {} samples in {:.1}s",
        out.final_val_acc,
        out.epochs.len(),
        30_000,
        out.seconds
    );
    assert!(
        dropped < base,
        "removing half the ReLUs should cost accuracy ({dropped} vs {base})"
    );
    assert!(
        out.final_val_acc >= 0.985,
        "fine-tuned accuracy {:.4} < 0.985",
        out.final_val_acc
    );
    let reloaded = Model::load(&out.model_path).unwrap();
    assert_eq!(relus(&reloaded), 2);
}
