//! The train step on the CUDA execution provider against the CPU one (same graph, same start, same batches), on
//! the host-copying path and on the device-resident one (state in GPU memory, two alternating IoBinding buffer
//! sets). Runs only with `RATIO_GPU_TESTS=1` and a build with `--features cuda` (scripts/gpu-check.sh sets both
//! up); otherwise it says why it skipped. There is no GPU on the development machine: these ran only where
//! gpu-check.sh ran.

use converters::Model;
use converters::autodiff::{TrainStep, TrainStepConfig, build_train_step};
use models::config::ModelConfig;
use ndarray::{ArrayD, IxDyn};
use toolkit::runtime::{Device, RuntimeConfig};
use toolkit::train::{ResidentSession, StepSession, Stepper};

fn gpu_tests() -> bool {
    let on = std::env::var("RATIO_GPU_TESTS").ok().as_deref() == Some("1");
    if !on {
        eprintln!("skipped: set RATIO_GPU_TESTS=1 on a machine with an NVIDIA GPU (see scripts/gpu-check.sh)");
    }
    on
}

fn step() -> TrainStep {
    let m = Model::new(models::registry::by_name("resnet20", &ModelConfig::default().with_seed(3)).unwrap());
    let cfg = TrainStepConfig {
        batch_size: 32,
        ..Default::default()
    };
    build_train_step(&m, &cfg).unwrap()
}

fn cuda() -> RuntimeConfig {
    RuntimeConfig {
        device: Device::Cuda(0),
        ..RuntimeConfig::default()
    }
}

fn batch(t: usize) -> (ArrayD<f32>, ArrayD<i64>) {
    let x = ArrayD::from_shape_fn(IxDyn(&[32, 3, 32, 32]), |i| {
        ((i[0] * 131 + i[1] * 17 + i[2] * 29 + i[3] * 7 + t * 13) % 97) as f32 / 97.0 - 0.5
    });
    let y = ArrayD::from_shape_fn(IxDyn(&[32]), |i| ((i[0] + t) % 10) as i64);
    (x, y)
}

/// 20 SGD steps of `gpu` against a CPU host-copying session. cuDNN picks other reduction orders than MLAS; after
/// 20 steps float32 trajectories drift by ~1e-4 relative. A corrupted update (e.g. one buffer bound as both input
/// and output) differs by O(1).
fn follows_cpu(gpu: &mut dyn Stepper) {
    let mut cpu = StepSession::new(step(), &RuntimeConfig::cpu()).unwrap();
    for t in 0..20 {
        let (x, y) = batch(t);
        let a = cpu.advance(x.clone(), y.clone(), 0.05, t % 5 == 0).unwrap();
        let b = gpu.advance(x, y, 0.05, t % 5 == 0).unwrap();
        assert!(
            (a.loss - b.loss).abs() <= 1e-2 * a.loss.abs().max(1.0),
            "step {t}: cpu loss {} vs cuda loss {}",
            a.loss,
            b.loss
        );
        assert_eq!(a.logits.is_some(), b.logits.is_some());
    }
    let (sa, sb) = (cpu.read_state().unwrap(), gpu.read_state().unwrap());
    for ((a, b), s) in sa.iter().zip(&sb).zip(&cpu.step.state) {
        let worst = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-2, "state '{}' differs by {worst}", s.name);
    }
}

#[test]
fn cuda_train_steps_match_cpu() {
    if !gpu_tests() {
        return;
    }
    follows_cpu(&mut StepSession::new(step(), &cuda()).unwrap());
}

#[test]
fn cuda_resident_steps_match_cpu_and_keep_state_on_the_device() {
    if !gpu_tests() {
        return;
    }
    let mut gpu = ResidentSession::new(step(), &cuda()).unwrap();
    assert_eq!(gpu.resident().device(), Device::Cuda(0));
    gpu.resident().check_disjoint().unwrap();
    let init = gpu.read_state().unwrap();
    assert_eq!(
        init,
        toolkit::train::StepSession::new(step(), &RuntimeConfig::cpu())
            .unwrap()
            .state
    );
    follows_cpu(&mut gpu);
    // A NaN batch is not committed: the state read back is the one before it.
    let before = gpu.read_state().unwrap();
    let (x, y) = batch(99);
    let out = gpu.advance(x.mapv(|_| f32::NAN), y, 0.05, false).unwrap();
    assert!(!out.loss.is_finite());
    assert_eq!(gpu.read_state().unwrap(), before);
}
