//! The Leaky-ReLU ensemble identity run in ONNX Runtime: on small models built here (with a hand-computed check of
//! the groups on an MLP) and on the real MNIST CNN with its ReLUs made leaky; plus the bad-input errors.

mod richness_support;

use converters::Model;
use converters::ir::attr::NodeExt;
use converters::ir::build::{self, Attr, GraphBuilder};
use converters::proto::tensor_proto::DataType;
use ndarray::{Array2, Array4};
use rand::{Rng, SeedableRng};
use richness_support::{batches, cfg, mnist_model, mnist_test};
use toolkit::analysis::leaky::{LeakyError, LeakyOptions, build_decomposition, decompose};
use toolkit::analysis::richness::Batch;

fn finish(b: GraphBuilder) -> Model {
    let mut p = build::model(b.finish(), "leaky-test");
    p.opset_import[0].version = Some(13);
    Model::new(p)
}

fn rand_vec(rng: &mut rand_chacha::ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// Conv → LeakyRelu → Conv → LeakyRelu → MaxPool → Flatten → Gemm → LeakyRelu → Gemm, random weights with biases.
fn small_cnn(alpha: f32, seed: u64) -> Model {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut b = GraphBuilder::new("small_cnn");
    let x = b.input("x", DataType::Float, &[None, Some(1), Some(6), Some(6)]);
    let w1 = b.init_f32("w1", &[2, 1, 3, 3], &rand_vec(&mut rng, 18, 0.6));
    let b1 = b.init_f32("b1", &[2], &rand_vec(&mut rng, 2, 0.2));
    let w2 = b.init_f32("w2", &[3, 2, 3, 3], &rand_vec(&mut rng, 54, 0.4));
    let b2 = b.init_f32("b2", &[3], &rand_vec(&mut rng, 3, 0.2));
    let w3 = b.init_f32("w3", &[27, 8], &rand_vec(&mut rng, 216, 0.3));
    let b3 = b.init_f32("b3", &[8], &rand_vec(&mut rng, 8, 0.2));
    let w4 = b.init_f32("w4", &[8, 4], &rand_vec(&mut rng, 32, 0.5));
    let b4 = b.init_f32("b4", &[4], &rand_vec(&mut rng, 4, 0.2));
    let pads = || ("pads", Attr::Ints(vec![1, 1, 1, 1]));
    let c1 = b.op("Conv", "c1", &[&x, &w1, &b1], vec![pads()]);
    let a1 = b.op("LeakyRelu", "a1", &[&c1], vec![("alpha", Attr::Float(alpha))]);
    let c2 = b.op("Conv", "c2", &[&a1, &w2, &b2], vec![pads()]);
    let a2 = b.op("LeakyRelu", "a2", &[&c2], vec![("alpha", Attr::Float(alpha))]);
    let p = b.op(
        "MaxPool",
        "pool",
        &[&a2],
        vec![
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("strides", Attr::Ints(vec![2, 2])),
        ],
    );
    let f = b.op("Flatten", "flat", &[&p], vec![("axis", Attr::Int(1))]);
    let g1 = b.op("Gemm", "g1", &[&f, &w3, &b3], vec![]);
    let a3 = b.op("LeakyRelu", "a3", &[&g1], vec![("alpha", Attr::Float(alpha))]);
    let y = b.op("Gemm", "g2", &[&a3, &w4, &b4], vec![]);
    b.output(&y, DataType::Float, &[None, Some(4)]);
    finish(b)
}

fn random_batches(shape: &[usize], count: usize, seed: u64) -> Vec<anyhow::Result<Batch>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let n: usize = shape.iter().product();
            let x = ndarray::ArrayD::from_shape_vec(shape.to_vec(), rand_vec(&mut rng, n, 1.0)).unwrap();
            let labels = Some((0..shape[0]).map(|_| rng.random_range(0..4u32)).collect());
            Ok(Batch { x, labels })
        })
        .collect()
}

#[test]
fn identity_holds_on_a_small_cnn() {
    let model = small_cnn(0.2, 5);
    let dec = build_decomposition(&model, Some(0.2)).unwrap();
    assert_eq!(dec.layers.len(), 3);
    let r = decompose(
        &dec,
        random_batches(&[16, 1, 6, 6], 3, 9),
        &LeakyOptions::default(),
        &cfg(),
    )
    .unwrap();
    assert!(r.exact);
    assert_eq!(r.samples, 48);
    // f32 forward passes summed in f64: rounding level, far below the 1e-5 the identity is pinned to.
    assert!(r.reconstruction_rel_error < 1e-5, "{}", r.reconstruction_rel_error);
    assert_eq!(r.groups.iter().map(|g| g.subsets).collect::<Vec<_>>(), vec![1, 3, 3, 1]);
    let wsum: f64 = r.groups.iter().map(|g| g.weight).sum();
    assert!((wsum - 1.0).abs() < 1e-12);
    // The subnetworks really differ: stopping before the last group leaves a visible error.
    assert!(r.groups[2].partial_rel_error > 1e-3, "{:?}", r.groups);
    assert!((r.groups[3].partial_rel_error - r.reconstruction_rel_error).abs() < 1e-12);
}

/// x[N,3] → Gemm(W1,b1) → LeakyRelu(a) → Gemm(W2,b2): small enough to compute every group by hand.
#[test]
fn groups_match_a_hand_computation_on_an_mlp() {
    let a = 0.3f32;
    let w1 = [0.5f32, -1.0, 0.25, 1.5, 0.75, -0.5, -0.25, 1.0, 2.0, -1.5, 0.5, 0.1];
    let b1 = [0.1f32, -0.2, 0.3, 0.0];
    let w2 = [1.0f32, -1.0, 0.5, 2.0, -0.5, 1.0, 1.5, -0.25];
    let b2 = [0.05f32, -0.05];
    let mut b = GraphBuilder::new("mlp");
    let x = b.input("x", DataType::Float, &[None, Some(3)]);
    let iw1 = b.init_f32("w1", &[3, 4], &w1);
    let ib1 = b.init_f32("b1", &[4], &b1);
    let iw2 = b.init_f32("w2", &[4, 2], &w2);
    let ib2 = b.init_f32("b2", &[2], &b2);
    let h = b.op("Gemm", "h", &[&x, &iw1, &ib1], vec![]);
    let z = b.op("LeakyRelu", "z", &[&h], vec![("alpha", Attr::Float(a))]);
    let y = b.op("Gemm", "y", &[&z, &iw2, &ib2], vec![]);
    b.output(&y, DataType::Float, &[None, Some(2)]);
    let model = finish(b);
    let xs = [[1.0f32, 2.0, -1.0], [-0.5, 0.3, 0.8], [2.0, -1.0, 0.5], [0.0, 0.0, 1.0]];
    let batch = Batch {
        x: Array2::from_shape_fn((4, 3), |(i, j)| xs[i][j]).into_dyn(),
        labels: None,
    };
    let dec = build_decomposition(&model, None).unwrap();
    assert_eq!(dec.alpha, a);
    let r = decompose(&dec, vec![Ok(batch)], &LeakyOptions::default(), &cfg()).unwrap();
    // G_0 = a·(W2ᵀ h + b2) (linear net), G_1 = (1−a)·(W2ᵀ (D⊙h) + b2) with D = [h > 0].
    let (mut n0, mut n1) = (0.0f64, 0.0f64);
    for xi in &xs {
        let h: Vec<f64> = (0..4)
            .map(|j| b1[j] as f64 + (0..3).map(|i| xi[i] as f64 * w1[i * 4 + j] as f64).sum::<f64>())
            .collect();
        let out = |gate: &dyn Fn(f64) -> f64| -> Vec<f64> {
            (0..2)
                .map(|k| b2[k] as f64 + (0..4).map(|j| gate(h[j]) * w2[j * 2 + k] as f64).sum::<f64>())
                .collect()
        };
        let norm = |v: Vec<f64>, w: f64| v.iter().map(|t| (w * t).powi(2)).sum::<f64>().sqrt();
        n0 += norm(out(&|v| v), a as f64);
        n1 += norm(out(&|v| if v > 0.0 { v } else { 0.0 }), 1.0 - a as f64);
    }
    assert!(
        (r.groups[0].mean_norm - n0 / 4.0).abs() < 1e-5,
        "{} vs {}",
        r.groups[0].mean_norm,
        n0 / 4.0
    );
    assert!(
        (r.groups[1].mean_norm - n1 / 4.0).abs() < 1e-5,
        "{} vs {}",
        r.groups[1].mean_norm,
        n1 / 4.0
    );
    assert!(r.reconstruction_rel_error < 1e-6);
    assert!(r.leaky_accuracy.is_none());
}

/// The pretrained MNIST CNN with every Relu turned into LeakyRelu(0.1): four layers, three MaxPools.
#[test]
fn identity_holds_on_the_leaky_mnist_cnn() {
    let mut model = mnist_model();
    for n in &mut model.graph_mut().node {
        if n.op() == "Relu" {
            n.op_type = Some("LeakyRelu".into());
            n.attribute.push(build::attr("alpha", Attr::Float(0.1)));
        }
    }
    let dec = build_decomposition(&model, Some(0.1)).unwrap();
    assert_eq!(dec.layers.len(), 4);
    let (x, y) = mnist_test(200);
    let r = decompose(&dec, batches(&x, &y, 100), &LeakyOptions::default(), &cfg()).unwrap();
    assert_eq!(r.samples, 200);
    assert!(r.reconstruction_rel_error < 1e-5, "{}", r.reconstruction_rel_error);
    assert_eq!(r.groups.len(), 5);
    // The full partial sum is the leaky network, so it scores exactly what the network scores.
    assert_eq!(r.groups[4].partial_accuracy, r.leaky_accuracy);
    // Leaking 10 % barely hurts a 99 % network on its first 200 test digits.
    assert!(r.leaky_accuracy.unwrap() > 0.9, "{:?}", r.leaky_accuracy);
    // With a = 0.1 the mixture is dominated by the all-gated group: weight 0.9⁴ ≈ 0.656 (alpha is stored as f32,
    // hence 1e-6).
    assert!((r.groups[4].weight - 0.9f64.powi(4)).abs() < 1e-6);
    assert!(r.groups[4].mean_norm > r.groups[0].mean_norm);
}

#[test]
fn sampled_mode_is_used_above_the_exact_limit() {
    let model = small_cnn(0.2, 6);
    let dec = build_decomposition(&model, None).unwrap();
    let opts = LeakyOptions {
        max_exact: 2,
        subsets_per_k: 2,
        ..Default::default()
    };
    let r = decompose(&dec, random_batches(&[8, 1, 6, 6], 1, 3), &opts, &cfg()).unwrap();
    assert!(!r.exact);
    assert_eq!(
        r.groups.iter().map(|g| g.evaluated).collect::<Vec<_>>(),
        vec![1, 2, 2, 1]
    );
    assert!(r.reconstruction_rel_error.is_finite());
}

#[test]
fn bad_input_gives_clear_errors() {
    let relu = mnist_model();
    let e = build_decomposition(&relu, None).unwrap_err();
    assert!(matches!(e, LeakyError::NoLeakyRelu { .. }));
    assert!(
        e.to_string().contains("mnist_cnn.onnx") && e.to_string().contains("--leaky"),
        "{e}"
    );

    let model = small_cnn(0.2, 5);
    let e = build_decomposition(&model, Some(0.3)).unwrap_err();
    assert!(
        e.to_string().contains("--alpha 0.3") && e.to_string().contains("0.2"),
        "{e}"
    );

    let mut mixed = small_cnn(0.2, 5);
    let n = mixed
        .graph_mut()
        .node
        .iter_mut()
        .find(|n| n.op() == "LeakyRelu")
        .unwrap();
    n.attribute = vec![build::attr("alpha", Attr::Float(0.5))];
    assert!(matches!(
        build_decomposition(&mixed, None).unwrap_err(),
        LeakyError::MixedAlpha { .. }
    ));

    let mut soft = small_cnn(0.2, 5);
    let g = soft.graph_mut();
    let out = g.output[0].name.clone().unwrap();
    g.node.push(build::node("Softmax", "sm", &[&out], &["probs"], vec![]));
    g.output[0].name = Some("probs".into());
    let e = build_decomposition(&soft, None).unwrap_err();
    assert!(matches!(&e, LeakyError::NotAffine { op, .. } if op == "Softmax"), "{e}");

    let x = Array4::<f32>::zeros((0, 1, 6, 6)).into_dyn();
    let dec = build_decomposition(&model, None).unwrap();
    let e = decompose(
        &dec,
        vec![Ok(Batch { x, labels: None })],
        &LeakyOptions::default(),
        &cfg(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no samples"), "{e}");
}
