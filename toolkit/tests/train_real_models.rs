//! Train steps of real third-party checkpoints run in ORT: EfficientNet-Lite0 (opset 20, ReLU6 as Clip,
//! depthwise convs, BN folded) takes SGD steps that lower the loss on a fixed batch.

use converters::Model;
use converters::autodiff::{TrainStepConfig, build_train_step};
use ndarray::{ArrayD, IxDyn};
use ratio_testkit::shared;
use toolkit::runtime::RuntimeConfig;
use toolkit::train::StepSession;

#[test]
fn efficientnet_lite0_steps_lower_the_loss() {
    let m = Model::load(shared("models/efficientnet_lite0.onnx")).unwrap();
    let step = build_train_step(
        &m,
        &TrainStepConfig {
            batch_size: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = StepSession::new(step, &RuntimeConfig::cpu().with_threads(2)).unwrap();
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 224, 224]), |i| {
        ((i[1] * 31 + i[2] * 7 + i[3] * 3 + i[0]) % 255) as f32 / 128.0 - 1.0
    });
    let y = ArrayD::from_shape_vec(IxDyn(&[2]), vec![967i64, 282]).unwrap();
    let losses: Vec<f32> = (0..3)
        .map(|_| s.train_step(x.view(), y.view(), 0.01).unwrap().loss)
        .collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(
        losses[2] < losses[0],
        "loss did not decrease on a fixed batch: {losses:?}"
    );
}
