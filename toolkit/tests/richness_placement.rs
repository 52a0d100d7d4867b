//! Negative-mass placement on the pretrained MNIST CNN: scores from training images, accuracy before any
//! fine-tuning on test images, against `--keep first` and `--keep last` under the same ratio and scope.
//!
//! Honest outcome (2000 test digits, scores from 1000 training digits, global scope, 1-thread CPU ORT 1.31.1):
//!
//! | ratio, protection      | first  | last   | by-negative-mass |
//! |------------------------|--------|--------|------------------|
//! | 2:1, none              | 0.9020 | 0.8325 | 0.8310           |
//! | 4:1, none              | 0.3070 | 0.7010 | 0.8045           |
//! | 4:3, none              | 0.9535 | 0.8540 | 0.8540           |
//! | 2:1, stem+head kept    | 0.9260 | 0.4540 | 0.4540           |
//!
//! (unconverted: 0.9875). Negative mass wins only when a single ReLU is kept (4:1); otherwise keeping the early
//! ReLUs is better on this network. The inputs of the deeper ReLUs carry the most negative mass (0.96–0.97 vs 0.74
//! for the first), so the policy keeps late ReLUs and behaves like `last`: negative mass measures how much of a
//! ReLU's input it zeroes, not how much that change propagates to the logits.

mod richness_support;

use converters::convert::convert;
use converters::policy::{Keep, Policy, Ratio, Scope};
use richness_support::{accuracy, batches, cfg, mnist_model, mnist_test, mnist_train};
use toolkit::analysis::richness::negative_mass_scores_from_batches;

#[test]
fn negative_mass_placement_against_first_and_last() {
    let model = mnist_model();
    let (tx, ty) = mnist_train(1000);
    let scores = negative_mass_scores_from_batches(&model, batches(&tx, &ty, 250), 1000, &cfg()).unwrap();
    let (x, y) = mnist_test(2000);
    let base = accuracy(&model, &x, &y);
    let mut rows = Vec::new();
    for (n, m, protect) in [(2, 1, false), (4, 1, false), (4, 3, false), (2, 1, true)] {
        let mut accs = Vec::new();
        for keep in [Keep::First, Keep::Last, Keep::ByNegativeMass] {
            let policy = Policy {
                ratio: Ratio { n, m },
                scope: Scope::Global,
                keep,
                protect_stem: protect,
                protect_head: protect,
                ..Default::default()
            };
            let c = convert(&model, &policy, Some(&scores)).unwrap();
            accs.push(accuracy(&c.model, &x, &y));
        }
        eprintln!(
            "{n}:{m} protect={protect}: first {:.4} last {:.4} by-negative-mass {:.4}",
            accs[0], accs[1], accs[2]
        );
        rows.push(accs);
    }
    assert!(base > 0.98, "{base}");
    // Every converted model loses accuracy before fine-tuning.
    assert!(rows.iter().flatten().all(|&a| a < base));
    let (first, last, neg) = (0, 1, 2);
    // 4:1 keeps one ReLU: the highest-scoring one beats both fixed rules by a wide margin.
    assert!(
        rows[1][neg] > rows[1][first] + 0.05 && rows[1][neg] > rows[1][last] + 0.05,
        "{rows:?}"
    );
    // It does not win in general: at 2:1 and 4:3 keeping the first ReLUs is clearly better (documented above).
    assert!(
        rows[0][first] > rows[0][neg] + 0.03 && rows[2][first] > rows[2][neg] + 0.03,
        "{rows:?}"
    );
    // The scores rank the deep ReLUs first, which is why the policy tracks `last` here.
    let deep = scores["/conv_layers/conv_layers.7/Relu"].min(scores["/conv_layers/conv_layers.4/Relu"]);
    assert!(deep > scores["/conv_layers/conv_layers.1/Relu"] && deep > scores["/fc_layers/fc_layers.1/Relu"]);
}
