//! Conversions checked in ONNX Runtime: the real checkpoints in ../shared/models and the `models` networks load
//! and run after surgery, counts match the policy, and where every removed ReLU's input is ≥ 0 the outputs equal
//! the original's.

use converters::act::ActKind;
use converters::convert::convert;
use converters::ir::Model;
use converters::ir::attr::NodeExt;
use converters::ir::tensor;
use converters::policy::{Keep, Policy, Scope};
use models::ModelConfig;
use prost::Message;
use ratio_testkit::shared;
use toolkit::checks::check_conversion;
use toolkit::runtime::RuntimeConfig;

mod support;

use support::policy;

fn cfg() -> RuntimeConfig {
    RuntimeConfig {
        intra_threads: Some(1),
        ..RuntimeConfig::default()
    }
}

#[test]
fn mnist_cnn_2_1_runs_and_changes_the_function() {
    let m = Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    // auto scope: one conv per stage in this net, so the ratio is counted over the whole body.
    let c = convert(&m, &policy("2:1", Scope::Auto, Keep::Last), None).unwrap();
    assert_eq!(c.plan.scope, Scope::Global);
    let removed: Vec<_> = c.plan.changed().map(|s| s.name.as_str()).collect();
    assert_eq!(removed, ["/conv_layers/conv_layers.4/Relu"]);
    let relus = c.model.graph().node.iter().filter(|n| n.op() == "Relu").count();
    assert_eq!(relus, 3);
    let check = check_conversion(&m, &c.model, &c.plan, &cfg(), 8, 0).unwrap();
    assert!(
        check.max_abs_diff_all > 1e-3,
        "removing a ReLU must change the outputs: {check:?}"
    );
}

#[test]
fn efficientnet_relu6_slots_convert_and_run() {
    let m = Model::load(shared("models/efficientnet_lite0.onnx")).unwrap();
    let p = Policy {
        acts: vec![ActKind::Relu6],
        ..policy("2:1", Scope::Block, Keep::Spread)
    };
    let c = convert(&m, &p, None).unwrap();
    let clips_before = m.graph().node.iter().filter(|n| n.op() == "Clip").count();
    let clips_after = c.model.graph().node.iter().filter(|n| n.op() == "Clip").count();
    assert_eq!(clips_before - clips_after, c.plan.changed().count());
    assert!(c.plan.changed().count() >= 10, "{}", c.plan.changed().count());
    check_conversion(&m, &c.model, &c.plan, &cfg(), 2, 1).unwrap();
}

#[test]
fn every_network_runs_after_conversion_under_each_keep_rule() {
    for name in ["resnet20", "vgg", "densenet", "plain"] {
        let m = Model::from_bytes(
            models::by_name(name, &ModelConfig::default())
                .unwrap()
                .encode_to_vec()
                .into(),
        )
        .unwrap();
        for keep in [Keep::First, Keep::Last, Keep::Spread] {
            let p = Policy {
                protect_stem: false,
                ..policy("2:1", Scope::Global, keep)
            };
            let c = convert(&m, &p, None).unwrap();
            let check = check_conversion(&m, &c.model, &c.plan, &cfg(), 2, 3).unwrap();
            assert!(check.max_abs_diff_all.is_finite(), "{name} {keep:?}");
        }
    }
}

/// A network whose every pre-activation is ≥ 0 for inputs ≥ 0: all weights, biases and BN scales/shifts made
/// non-negative and BN means zero. Removing any ReLU is then the identity, so outputs must match exactly.
fn nonnegative(mut m: Model) -> Model {
    let g = m.graph().clone();
    let bn_means: Vec<String> = g
        .node
        .iter()
        .filter(|n| n.op() == "BatchNormalization")
        .map(|n| n.input[3].clone())
        .collect();
    for t in m.graph_mut().initializer.iter_mut() {
        let name = t.name.clone().unwrap_or_default();
        let v = tensor::to_f32(t, None).unwrap();
        let new: Vec<f32> = if bn_means.contains(&name) {
            vec![0.0; v.len()]
        } else {
            v.iter().map(|x| x.abs()).collect()
        };
        *t = tensor::from_f32(&name, &t.dims.clone(), &new);
    }
    m
}

fn resnet20() -> Model {
    Model::from_bytes(
        models::resnet20(&ModelConfig::default())
            .unwrap()
            .encode_to_vec()
            .into(),
    )
    .unwrap()
}

#[test]
fn outputs_equal_where_removed_inputs_are_nonnegative() {
    let base = resnet20();
    let m = nonnegative(base.clone());
    let c = convert(&m, &policy("2:1", Scope::Block, Keep::Last), None).unwrap();
    let check = check_conversion(&m, &c.model, &c.plan, &cfg(), 4, 5).unwrap();
    assert_eq!(
        check.qualifying_samples, 4,
        "every sample qualifies by construction: {check:?}"
    );
    let d = check.max_abs_diff_qualifying.unwrap();
    assert!(d <= 1e-4 * 1e3, "{check:?}");
    // Control: the same conversion of the ordinary network changes its outputs and no random sample qualifies.
    let c = convert(&base, &policy("2:1", Scope::Block, Keep::Last), None).unwrap();
    let check = check_conversion(&base, &c.model, &c.plan, &cfg(), 4, 5).unwrap();
    assert_eq!(check.qualifying_samples, 0, "{check:?}");
    assert!(check.max_abs_diff_all > 1e-4, "{check:?}");
}

#[test]
fn leaky_conversion_runs_in_ort() {
    let m = Model::load(shared("models/mnist_cnn.onnx")).unwrap();
    let p = Policy {
        leaky: Some(0.1),
        ..policy("2:1", Scope::Global, Keep::Last)
    };
    let c = convert(&m, &p, None).unwrap();
    assert_eq!(c.model.graph().node.iter().filter(|n| n.op() == "LeakyRelu").count(), 1);
    check_conversion(&m, &c.model, &c.plan, &cfg(), 2, 0).unwrap();
}

/// `nonnegative` with every float initializer of more than one element also multiplied by `scale` (BN variances
/// excepted, so the scale reaches the pre-activations): small scales keep every pre-activation in [0, 6], large
/// ones push some above 6.
fn nonnegative_scaled(m: Model, scale: f32) -> Model {
    let mut m = nonnegative(m);
    let vars: Vec<String> = m
        .graph()
        .node
        .iter()
        .filter(|n| n.op() == "BatchNormalization")
        .map(|n| n.input[4].clone())
        .collect();
    for t in m.graph_mut().initializer.iter_mut() {
        let name = t.name.clone().unwrap_or_default();
        let v = tensor::to_f32(t, None).unwrap();
        if v.len() > 1 && !vars.contains(&name) {
            let new: Vec<f32> = v.iter().map(|x| x * scale).collect();
            *t = tensor::from_f32(&name, &t.dims.clone(), &new);
        }
    }
    m
}

fn relu6_model(scale: f32) -> (Model, converters::convert::Converted) {
    let proto = models::patterns::mobilenet_v2_inverted_residual();
    let m = nonnegative_scaled(Model::from_bytes(proto.encode_to_vec().into()).unwrap(), scale);
    let p = Policy {
        acts: vec![ActKind::Relu6],
        protect_stem: false,
        ..policy("2:1", Scope::Global, Keep::Last)
    };
    let c = convert(&m, &p, None).unwrap();
    assert!(c.plan.changed().count() >= 1);
    (m, c)
}

#[test]
fn relu6_samples_qualify_only_inside_zero_to_six() {
    // Every pre-activation in [0, 6]: removing Clip(0, 6) is the identity, so every sample qualifies and matches.
    let (m, c) = relu6_model(0.05);
    let check = check_conversion(&m, &c.model, &c.plan, &cfg(), 3, 2).unwrap();
    assert_eq!(check.qualifying_samples, 3, "{check:?}");
    assert!(check.max_abs_diff_qualifying.unwrap() <= 1e-4, "{check:?}");

    // Pre-activations ≥ 0 but some above 6: the removed clips changed the function on those samples, so they
    // must not qualify (counting only `< 0` as disqualifying failed this correct conversion).
    let (m, c) = relu6_model(20.0);
    let check = check_conversion(&m, &c.model, &c.plan, &cfg(), 3, 2).unwrap();
    assert_eq!(check.qualifying_samples, 0, "{check:?}");
    assert!(
        check.max_abs_diff_all > 1e-3,
        "the clips above 6 must matter: {check:?}"
    );
}

#[test]
fn broken_conversions_fail_the_check() {
    let base = resnet20();
    // Well-conditioned (pre-activations ≥ 0, outputs of order one), so every sample qualifies and any change to
    // the function shows against the tolerance.
    let m = nonnegative_scaled(base, 0.3);
    let c = convert(&m, &policy("2:1", Scope::Block, Keep::Last), None).unwrap();
    let ok = check_conversion(&m, &c.model, &c.plan, &cfg(), 2, 5).unwrap();
    assert_eq!(ok.qualifying_samples, 2, "{ok:?}");

    // Surgery that also bypassed a BatchNormalization (its consumer rewired to the BN's input).
    let mut skipped = c.model.clone();
    let g = skipped.graph_mut();
    let bn = g.node.iter().find(|n| n.op() == "BatchNormalization").unwrap().clone();
    for n in g.node.iter_mut() {
        for i in n.input.iter_mut() {
            if *i == bn.output[0] {
                *i = bn.input[0].clone();
            }
        }
    }
    let e = check_conversion(&m, &skipped, &c.plan, &cfg(), 2, 5).unwrap_err();
    assert!(format!("{e:#}").contains("outputs differ"), "{e:#}");

    // Surgery that corrupted a weight.
    let mut corrupted = c.model.clone();
    let w = corrupted
        .graph_mut()
        .initializer
        .iter_mut()
        .rfind(|t| t.dims.len() == 4)
        .unwrap();
    let v: Vec<f32> = tensor::to_f32(w, None).unwrap().iter().map(|x| x * 1.5).collect();
    *w = tensor::from_f32(&w.name.clone().unwrap(), &w.dims.clone(), &v);
    let e = check_conversion(&m, &corrupted, &c.plan, &cfg(), 2, 5).unwrap_err();
    assert!(format!("{e:#}").contains("outputs differ"), "{e:#}");
}
