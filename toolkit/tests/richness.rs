//! `toolkit::analysis::richness` on the real pretrained MNIST CNN and the real MNIST test set in ../shared:
//! metrics in range and consistent with independent facts (known accuracy, channel counts, CKA self-similarity),
//! batching does not change results, negative-mass scores, and the bad-input errors.

mod richness_support;

use converters::Model;
use converters::ir::build::{self, Attr, GraphBuilder};
use converters::proto::tensor_proto::DataType;
use ndarray::ArrayD;
use richness_support::{batches, cfg, mnist_model, mnist_test};
use toolkit::analysis::richness::{
    Batch, LayerSelect, ModelCapture, RichnessError, RichnessOptions, analyze, negative_mass_scores_from_batches,
};

fn capture(model: &Model, select: &LayerSelect) -> ModelCapture {
    ModelCapture::new(model, "sha".into(), select, &cfg()).unwrap()
}

#[test]
fn mnist_cnn_metrics_are_consistent() {
    let (x, y) = mnist_test(1000);
    let model = mnist_model();
    let mut caps = [capture(&model, &LayerSelect::Auto)];
    let opts = RichnessOptions {
        samples: 1000,
        cka_samples: 500,
        ..Default::default()
    };
    let run = analyze(&mut caps, batches(&x, &y, 250), &opts).unwrap();
    assert_eq!(run.samples, 1000);
    let m = &run.models[0];
    // The checkpoint's known test accuracy is 99.06 % on all 10 000; the first 1000 are no harder than ~98 %.
    assert!(m.accuracy.unwrap() > 0.98, "{:?}", m.accuracy);
    // A plain chain: the 4 ReLUs and no joins, with the documented widths 32/64/128 and FC 256.
    let widths: Vec<usize> = m.layers.iter().map(|l| l.channels).collect();
    assert_eq!(widths, vec![32, 64, 128, 256]);
    assert_eq!(
        m.layers.iter().map(|l| l.spatial).collect::<Vec<_>>(),
        vec![784, 196, 49, 1]
    );
    for l in &m.layers {
        assert_eq!(l.op, "Relu");
        assert_eq!(l.samples, 1000);
        let er = l.effective_rank.unwrap();
        let pr = l.participation_ratio.unwrap();
        // PR ≤ effective rank ≤ channels (Rényi-2 vs Shannon entropy), both ≥ 1 for a non-constant layer.
        assert!(
            1.0 <= pr && pr <= er + 1e-9 && er <= l.channels as f64,
            "{}: pr {pr} er {er}",
            l.name
        );
        let (dead, sparsity, neg) = (l.dead_fraction.unwrap(), l.sparsity.unwrap(), l.negative_mass.unwrap());
        assert!((0.0..1.0).contains(&dead) && (0.0..1.0).contains(&sparsity) && neg > 0.0 && neg < 1.0);
        // Far above chance (10 %) everywhere, even on globally pooled first-layer features.
        assert!(l.probe_accuracy.unwrap() > 0.5, "{}: {:?}", l.name, l.probe_accuracy);
        let distinct = l.distinct_patterns.unwrap();
        assert!(distinct > 1 && distinct <= 1000);
        assert!(l.pattern_entropy_bits.unwrap() <= (distinct as f64).log2() + 1e-9);
    }
    assert!(m.layers[3].spatial_effective_rank.is_none() && m.layers[0].spatial_effective_rank.is_some());
    // Per-position channel patterns: of the 4000 positions drawn, far fewer distinct 32-bit patterns in the first
    // layer (background positions share a few patterns).
    let pp = m.layers[0].position_patterns.unwrap();
    assert!(pp > 10 && pp < 4000, "{pp}");
    assert!(m.layers[3].position_patterns.is_none());
    // The penultimate features separate digits almost perfectly.
    assert!(m.layers[3].probe_accuracy.unwrap() > 0.95);
    assert!(m.layers[3].probe_accuracy > m.layers[0].probe_accuracy);
    let cka = &run.cka[0];
    assert_eq!(cka.samples, 500);
    for i in 0..4 {
        assert!((cka.values[i][i].unwrap() - 1.0).abs() < 1e-9);
        for j in 0..4 {
            assert!((cka.values[i][j].unwrap() - cka.values[j][i].unwrap()).abs() < 1e-9);
        }
    }
    // Adjacent layers are more alike than the first and the last.
    assert!(cka.values[2][3].unwrap() > cka.values[0][3].unwrap());
}

#[test]
fn batching_does_not_change_results() {
    let (x, y) = mnist_test(300);
    let model = mnist_model();
    let opts = RichnessOptions {
        samples: 300,
        cka_samples: 200,
        ..Default::default()
    };
    let run = |size| {
        let mut caps = [capture(&model, &LayerSelect::Auto)];
        analyze(&mut caps, batches(&x, &y, size), &opts).unwrap()
    };
    let (a, b) = (run(300), run(37));
    for (la, lb) in a.models[0].layers.iter().zip(&b.models[0].layers) {
        let close = |p: Option<f64>, q: Option<f64>| match (p, q) {
            (Some(p), Some(q)) => (p - q).abs() <= 1e-9 * p.abs().max(1.0),
            (None, None) => true,
            _ => false,
        };
        assert!(close(la.effective_rank, lb.effective_rank), "{}", la.name);
        assert!(
            close(la.spatial_participation_ratio, lb.spatial_participation_ratio),
            "{}",
            la.name
        );
        assert!(close(la.negative_mass, lb.negative_mass));
        assert_eq!(la.distinct_patterns, lb.distinct_patterns);
        assert_eq!(la.probe_accuracy, lb.probe_accuracy);
        assert_eq!(la.sparsity, lb.sparsity);
    }
    let (ca, cb) = (&a.cka[0].values, &b.cka[0].values);
    assert!(
        ca.iter()
            .flatten()
            .zip(cb.iter().flatten())
            .all(|(p, q)| (p.unwrap() - q.unwrap()).abs() < 1e-9)
    );
}

#[test]
fn two_models_give_a_cross_cka_matrix() {
    let (x, y) = mnist_test(200);
    let model = mnist_model();
    let select = LayerSelect::parse("re:Relu|relu").unwrap();
    let mut caps = [capture(&model, &select), capture(&model, &LayerSelect::Auto)];
    let opts = RichnessOptions {
        samples: 200,
        probe: false,
        ..Default::default()
    };
    let run = analyze(&mut caps, batches(&x, &y, 64), &opts).unwrap();
    assert_eq!(run.models.len(), 2);
    assert_eq!(run.cka.len(), 1);
    let m = &run.cka[0];
    assert_eq!(m.left_layers, m.right_layers);
    // Same model on both sides: the diagonal is exactly self-similarity.
    assert!((0..m.left_layers.len()).all(|i| (m.values[i][i].unwrap() - 1.0).abs() < 1e-9));
    assert!(run.models[0].layers.iter().all(|l| l.probe_accuracy.is_none()));
}

#[test]
fn negative_mass_scores_cover_every_relu() {
    let (x, y) = mnist_test(200);
    let model = mnist_model();
    let scores = negative_mass_scores_from_batches(&model, batches(&x, &y, 100), 150, &cfg()).unwrap();
    let caps = capture(&model, &LayerSelect::Auto);
    let names: Vec<&str> = caps.accs.iter().map(|a| a.layer.name.as_str()).collect();
    assert_eq!(scores.len(), 4);
    for n in names {
        let s = scores[n];
        assert!(s > 0.0 && s < 1.0, "{n}: {s}");
    }
}

/// A graph with no rectifier: Conv → Flatten.
fn linear_model() -> Model {
    let mut b = GraphBuilder::new("linear");
    let x = b.input("input", DataType::Float, &[None, Some(1), Some(4), Some(4)]);
    let w = b.init_f32("w", &[2, 1, 3, 3], &[0.1; 18]);
    let c = b.op("Conv", "conv", &[&x, &w], vec![]);
    let f = b.op("Flatten", "flat", &[&c], vec![("axis", Attr::Int(1))]);
    b.output(&f, DataType::Float, &[None, Some(8)]);
    let mut p = build::model(b.finish(), "test");
    p.opset_import[0].version = Some(13);
    Model::new(p)
}

#[test]
fn bad_input_gives_clear_errors() {
    let model = mnist_model();
    let e = ModelCapture::new(
        &model,
        String::new(),
        &LayerSelect::parse("nope,also_nope").unwrap(),
        &cfg(),
    )
    .err()
    .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, RichnessError::UnknownLayers { .. }));
    assert!(
        msg.contains("'nope'") && msg.contains("'also_nope'") && msg.contains("mnist_cnn.onnx"),
        "{msg}"
    );
    let e = ModelCapture::new(&model, String::new(), &LayerSelect::parse("re:^zzz").unwrap(), &cfg())
        .err()
        .unwrap();
    assert!(matches!(e, RichnessError::NoMatch { .. }), "{e}");

    let lin = linear_model();
    let e = negative_mass_scores_from_batches(&lin, Vec::new(), 10, &cfg()).unwrap_err();
    assert!(e.to_string().contains("no ReLU"), "{e}");

    let mut caps = [
        capture(&model, &LayerSelect::Auto),
        capture(&lin, &LayerSelect::parse("re:.").unwrap()),
    ];
    let e = analyze(&mut caps, Vec::new(), &RichnessOptions::default()).unwrap_err();
    assert!(e.to_string().contains("different inputs"), "{e}");

    let (x, y) = mnist_test(8);
    let mut caps = [capture(&model, &LayerSelect::Auto)];
    let e = analyze(&mut caps, batches(&x, &y, 8), &RichnessOptions::default()).unwrap_err();
    assert!(e.to_string().contains("too few samples for a linear probe"), "{e:#}");

    let mut caps = [capture(&model, &LayerSelect::Auto)];
    let empty: Vec<anyhow::Result<Batch>> = vec![Ok(Batch {
        x: ArrayD::zeros(vec![0, 1, 28, 28]),
        labels: Some(vec![]),
    })];
    let e = analyze(&mut caps, empty, &RichnessOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no samples"), "{e}");
}
