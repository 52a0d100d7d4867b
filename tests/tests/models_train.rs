//! DATA.md's digits known answer for the `models` plain CNN: built by `models::plain_cnn` (BN kept, 1×8×8),
//! turned into a train-step graph by `converters::autodiff`, trained in ONNX Runtime on the real sklearn digits,
//! and evaluated as an inference model on a held-out split. It must reach ≥ 95 % top-1.

use std::io::Read;

use converters::autodiff::{BnMode, Optimizer, TrainStepConfig, build_train_step};
use converters::ir::Model;
use models::{ModelConfig, PlainConfig, plain_cnn};
use ndarray::{ArrayD, IxDyn};
use ratio_testkit::shared;
use toolkit::runtime::{Feed, Runner, RuntimeConfig};

/// (pixels scaled to [0, 1], labels) of the 1797 sklearn digits, in file order.
fn digits() -> (Vec<f32>, Vec<i64>) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(shared("data/digits.csv.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Vec<f32> = line.split(',').map(|s| s.trim().parse().unwrap()).collect();
        assert_eq!(v.len(), 65);
        x.extend(v[..64].iter().map(|p| p / 16.0));
        y.push(v[64] as i64);
    }
    (x, y)
}

#[test]
fn plain_cnn_trains_on_digits_to_95_percent() {
    let (x, y) = digits();
    let n = y.len();
    assert_eq!(n, 1797);
    // Every 5th sample is held out (stratified enough: classes are interleaved in the file).
    let (train, test): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 5 != 0);

    let cfg = PlainConfig::new(ModelConfig::new(1, 8, 10).with_seed(1));
    let model = Model::new(plain_cnn(&cfg).unwrap());
    let batch = 32usize;
    let step = build_train_step(
        &model,
        &TrainStepConfig {
            batch_size: batch as i64,
            optimizer: Optimizer::Sgd {
                momentum: 0.9,
                nesterov: false,
                weight_decay: 0.0,
            },
            bn: BnMode::Train,
            ..Default::default()
        },
    )
    .unwrap();
    let rt = RuntimeConfig::cpu().with_threads(1);
    let mut trainer = Runner::from_model(&Model::new(step.model.clone()), &rt).unwrap();
    let mut state: Vec<ArrayD<f32>> = step
        .state
        .iter()
        .zip(step.initial_values())
        .map(|(s, v)| {
            let dims: Vec<usize> = s.dims.iter().map(|&d| d as usize).collect();
            ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap()
        })
        .collect();
    let lr = ArrayD::from_elem(IxDyn(&[]), 0.05f32);
    // 8 epochs' worth of batches in a fixed, seed-free order: a stride-7 walk (7 is coprime with 1437) through the
    // training split, shifted by the step number so batches do not repeat in lockstep.
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for s in 0..(8 * train.len() / batch) {
        let idx: Vec<usize> = (0..batch)
            .map(|k| train[(7 * (s * batch + k) + s) % train.len()])
            .collect();
        let xb: Vec<f32> = idx
            .iter()
            .flat_map(|&i| x[i * 64..(i + 1) * 64].iter().copied())
            .collect();
        let xb = ArrayD::from_shape_vec(IxDyn(&[batch, 1, 8, 8]), xb).unwrap();
        let yb = ArrayD::from_shape_vec(IxDyn(&[batch]), idx.iter().map(|&i| y[i]).collect()).unwrap();
        let mut feeds: Vec<(&str, Feed<'_>)> = vec![
            (step.batch_input.as_str(), Feed::F32(xb.view())),
            (step.label_input.as_str(), Feed::I64(yb.view())),
            (step.lr_input.as_str(), Feed::F32(lr.view())),
        ];
        for (st, v) in step.state.iter().zip(&state) {
            feeds.push((st.input.as_str(), Feed::F32(v.view())));
        }
        let mut out = trainer.run(&feeds).unwrap();
        last_loss = out.get(&step.loss_output).unwrap().iter().copied().next().unwrap();
        first_loss.get_or_insert(last_loss);
        for (st, v) in step.state.iter().zip(state.iter_mut()) {
            *v = out.take(&st.output).unwrap();
        }
    }
    let first_loss = first_loss.unwrap();
    assert!(last_loss < 0.5 * first_loss, "loss {first_loss} → {last_loss}");

    let values: Vec<Vec<f32>> = state.iter().map(|a| a.iter().copied().collect()).collect();
    let trained = step.to_inference(&values).unwrap();
    let mut eval = Runner::from_model(&trained, &rt).unwrap();
    let xt: Vec<f32> = test
        .iter()
        .flat_map(|&i| x[i * 64..(i + 1) * 64].iter().copied())
        .collect();
    let xt = ArrayD::from_shape_vec(IxDyn(&[test.len(), 1, 8, 8]), xt).unwrap();
    let logits = eval
        .run(&[("input", Feed::F32(xt.view()))])
        .unwrap()
        .take("logits")
        .unwrap();
    let correct = test
        .iter()
        .enumerate()
        .filter(|&(r, &i)| {
            let row: Vec<f32> = (0..10).map(|c| logits[[r, c]]).collect();
            let pred = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            pred as i64 == y[i]
        })
        .count();
    let acc = correct as f64 / test.len() as f64;
    eprintln!(
        "plain_cnn digits: loss {first_loss:.3} → {last_loss:.3}, held-out top-1 {acc:.4} ({correct}/{}), seed 1, \
         ORT {}",
        test.len(),
        eval.ort_version()
    );
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

#[test]
fn every_registry_model_builds_a_train_step_that_runs() {
    // Small widths keep the train-step graphs quick; the op set is what matters (Conv, BN in training mode, Relu,
    // Add, Concat, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm).
    let base = ModelConfig::new(3, 16, 5).with_width(0.25).with_seed(2);
    for name in models::names() {
        let model = Model::new(models::by_name(name, &base).unwrap());
        let step = build_train_step(
            &model,
            &TrainStepConfig {
                batch_size: 2,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rt = RuntimeConfig::cpu().with_threads(1);
        let mut r = Runner::from_model(&Model::new(step.model.clone()), &rt).unwrap_or_else(|e| panic!("{name}: {e}"));
        let state: Vec<ArrayD<f32>> = step
            .state
            .iter()
            .zip(step.initial_values())
            .map(|(s, v)| ArrayD::from_shape_vec(IxDyn(&s.dims.iter().map(|&d| d as usize).collect::<Vec<_>>()), v))
            .collect::<Result<_, _>>()
            .unwrap();
        let xb = ArrayD::from_shape_fn(IxDyn(&[2, 3, 16, 16]), |ix| {
            ((ix[1] * 7 + ix[2] * 3 + ix[3]) % 11) as f32 / 11.0
        });
        let yb = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1i64, 3]).unwrap();
        let lr = ArrayD::from_elem(IxDyn(&[]), 0.01f32);
        let mut feeds: Vec<(&str, Feed<'_>)> = vec![
            (step.batch_input.as_str(), Feed::F32(xb.view())),
            (step.label_input.as_str(), Feed::I64(yb.view())),
            (step.lr_input.as_str(), Feed::F32(lr.view())),
        ];
        for (st, v) in step.state.iter().zip(&state) {
            feeds.push((st.input.as_str(), Feed::F32(v.view())));
        }
        let out = r.run(&feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
        let loss = out.get(&step.loss_output).unwrap().iter().copied().next().unwrap();
        // A fresh 5-class model starts near ln 5 ≈ 1.61; anything finite and positive shows the graph computes.
        assert!(loss.is_finite() && loss > 0.0, "{name}: loss {loss}");
        // Some parameter moved.
        let moved = step
            .state
            .iter()
            .zip(&state)
            .any(|(st, before)| out.get(&st.output).map(|after| after != before).unwrap_or(false));
        assert!(moved, "{name}: no state changed after one step");
    }
}
