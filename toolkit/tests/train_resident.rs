//! The device-resident train step (two alternating IoBinding buffer sets) against the plain host-copying step on
//! the CPU EP, one thread, real digits batches: losses, logits and every state tensor bit-identical over 60
//! steps, a non-finite step that must not advance the state, and a deliberately aliased wiring that both the
//! buffer check and the comparison must catch. Also the step on ONNX Runtime's NCHWc kernels (the default on the
//! CPU EP) against the same step on its plain kernels: equal within float summation order, and really different
//! kernels.

use converters::Model;
use converters::autodiff::{Optimizer, TrainStepConfig, build_train_step};
use models::config::ModelConfig;
use models::plain::{PlainConfig, plain_cnn};
use ndarray::{ArrayD, IxDyn};
use ratio_testkit::shared;
use toolkit::runtime::{Buffers, RuntimeConfig, nchwc};
use toolkit::train::data::{DataSpec, load};
use toolkit::train::{ResidentSession, StepSession, Stepper};

const BATCH: usize = 16;

/// Real digits batches in a fixed order (sample i·7 mod n), 8×8 grayscale, 10 classes.
fn digit_batches(steps: usize) -> Vec<(ArrayD<f32>, ArrayD<i64>)> {
    let path = shared("data/digits.csv.gz");
    let (tr, _) = load(&DataSpec::new(path.to_str().unwrap(), "digits").unwrap()).unwrap();
    (0..steps)
        .map(|s| {
            let idx: Vec<usize> = (0..BATCH).map(|j| ((s * BATCH + j) * 7) % tr.len()).collect();
            let (x, y) = tr.batch(&idx).unwrap();
            (
                ArrayD::from_shape_vec(IxDyn(&[BATCH, 1, 8, 8]), x).unwrap(),
                ArrayD::from_shape_vec(IxDyn(&[BATCH]), y).unwrap(),
            )
        })
        .collect()
}

fn step_of(opt: Optimizer) -> converters::autodiff::TrainStep {
    let m = Model::new(plain_cnn(&PlainConfig::new(ModelConfig::new(1, 8, 10).with_seed(7))).unwrap());
    let cfg = TrainStepConfig {
        batch_size: BATCH as i64,
        optimizer: opt,
        ..Default::default()
    };
    build_train_step(&m, &cfg).unwrap()
}

fn one_thread() -> RuntimeConfig {
    RuntimeConfig::cpu().with_threads(1)
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// Step index and what differed first, comparing a session against the plain one on the same batches; `None`
/// when every loss, every requested logit and the final state match bit for bit.
fn first_divergence(
    plain: &mut dyn Stepper,
    other: &mut dyn Stepper,
    batches: &[(ArrayD<f32>, ArrayD<i64>)],
) -> Option<String> {
    for (t, (x, y)) in batches.iter().enumerate() {
        // lr steps down over the run so the schedule input is exercised; a NaN batch at step 20 must not advance
        // either session.
        let lr = 0.05 / (1.0 + t as f32 / 20.0);
        let x = if t == 20 { x.mapv(|_| f32::NAN) } else { x.clone() };
        let logits = t % 7 == 0;
        let a = plain.advance(x.clone(), y.clone(), lr, logits).unwrap();
        let b = other.advance(x, y.clone(), lr, logits).unwrap();
        if a.loss.to_bits() != b.loss.to_bits() && !(a.loss.is_nan() && b.loss.is_nan()) {
            return Some(format!("step {t}: loss {} vs {}", a.loss, b.loss));
        }
        if a.logits.as_ref().map(bits) != b.logits.as_ref().map(bits) {
            return Some(format!("step {t}: logits differ"));
        }
        if plain.steps_taken() != other.steps_taken() {
            return Some(format!(
                "step {t}: {} vs {} steps taken",
                plain.steps_taken(),
                other.steps_taken()
            ));
        }
    }
    let (sa, sb) = (plain.read_state().unwrap(), other.read_state().unwrap());
    let names = &plain.step().state;
    sa.iter()
        .zip(&sb)
        .zip(names)
        .find(|((a, b), _)| bits(a) != bits(b))
        .map(|(_, s)| format!("final state '{}' differs", s.name))
}

#[test]
fn resident_steps_match_the_plain_path_bit_for_bit() {
    let batches = digit_batches(60);
    for opt in [
        Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
        },
        Optimizer::Adamw {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        },
    ] {
        let mut plain = StepSession::new(step_of(opt), &one_thread()).unwrap();
        let mut resident = ResidentSession::new(step_of(opt), &one_thread()).unwrap();
        resident.resident().check_disjoint().unwrap();
        let before = resident.read_state().unwrap();
        assert_eq!(
            before.iter().map(bits).collect::<Vec<_>>(),
            plain.state.iter().map(bits).collect::<Vec<_>>(),
            "uploaded initial state reads back unchanged"
        );
        assert_eq!(first_divergence(&mut plain, &mut resident, &batches), None, "{opt:?}");
        // 60 steps, one of them non-finite and not taken.
        assert_eq!(resident.steps_taken(), 59);
        let moved = resident.read_state().unwrap();
        assert!(
            before.iter().zip(&moved).any(|(a, b)| bits(a) != bits(b)),
            "the weights must have changed"
        );
        // Loading a checkpoint-style state resumes on it: both paths continue identically.
        resident.load_state(moved.clone(), 59).unwrap();
        plain.load_state(moved, 59).unwrap();
        assert_eq!(first_divergence(&mut plain, &mut resident, &batches[..5]), None);
    }
}

#[test]
fn aliased_buffers_are_caught_by_the_check_and_by_the_comparison() {
    let opt = Optimizer::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
    };
    let mut aliased = ResidentSession::with_buffers(step_of(opt), &one_thread(), Buffers::Aliased).unwrap();
    let e = aliased.resident().check_disjoint().unwrap_err().to_string();
    assert!(
        e.contains("alias") && e.contains("would be written into the buffer"),
        "{e}"
    );
    let mut plain = StepSession::new(step_of(opt), &one_thread()).unwrap();
    let found = first_divergence(&mut plain, &mut aliased, &digit_batches(50));
    assert!(
        found.is_some(),
        "one buffer as both input and output must change the trajectory"
    );
    eprintln!("aliasing detected: {}", found.unwrap());
}

#[test]
fn nchwc_kernels_train_like_the_plain_ones() {
    #[cfg(target_arch = "x86_64")]
    assert!(
        !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
            || nchwc::block(&one_thread()).is_some(),
        "MLAS has NCHWc kernels on every AVX2 CPU, so the probe must find their block"
    );
    let plain_cfg = RuntimeConfig {
        plain_convs: true,
        ..one_thread()
    };
    assert_eq!(nchwc::block(&plain_cfg), None);
    let Some(block) = nchwc::block(&one_thread()) else {
        eprintln!("no NCHWc kernels on this CPU: nothing to compare");
        return;
    };
    let opt = Optimizer::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 5e-4,
    };
    // conv2 (16 → 32) and its dX convolution are eligible; conv1 reads the 1-channel image and stays plain.
    let mut lowered = Model::new(step_of(opt).model);
    let n = converters::passes::nchwc::lower_convs(&mut lowered, block).unwrap();
    assert!(n >= 2, "{n} convolution(s) lowered");

    let mut fast = StepSession::new(step_of(opt), &one_thread()).unwrap();
    let mut plain = StepSession::new(step_of(opt), &plain_cfg).unwrap();
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * (1.0 + b.abs());
    let mut any_bit_differs = false;
    for (t, (x, y)) in digit_batches(30).into_iter().enumerate() {
        let a = fast.advance(x.clone(), y.clone(), 0.05, false).unwrap();
        let b = plain.advance(x, y, 0.05, false).unwrap();
        assert!(
            close(a.loss, b.loss),
            "step {t}: loss {} (NCHWc) vs {} (plain)",
            a.loss,
            b.loss
        );
        any_bit_differs |= a.loss.to_bits() != b.loss.to_bits();
    }
    let (sa, sb) = (fast.read_state().unwrap(), plain.read_state().unwrap());
    for ((a, b), s) in sa.iter().zip(&sb).zip(&fast.step().state) {
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-3,
            "state '{}' after 30 steps: relative difference {worst}",
            s.name
        );
        any_bit_differs |= bits(a) != bits(b);
    }
    assert!(
        any_bit_differs,
        "bit-identical trajectories: the default session did not run the lowered convolutions"
    );
}
