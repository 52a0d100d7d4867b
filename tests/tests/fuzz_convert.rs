//! Property tests standing in for a fuzzer: the loader never panics on mutated model bytes, and the converter,
//! under any policy, keeps graphs valid, output names unchanged and per-scope counts equal to the policy.
//! `PROPTEST_CASES=N` runs longer campaigns (the issue note records one).

use converters::ir::Model;
use converters::policy::{Keep, Policy, Ratio, Scope};
use converters::validate::validate;
use models::ModelConfig;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use prost::Message;
use ratio_testkit::shared;
use std::cell::Cell;

mod support;

fn mnist_bytes() -> Vec<u8> {
    std::fs::read(shared("models/mnist_cnn.onnx")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Flip, drop or insert bytes anywhere in a real model: decoding either fails cleanly or yields a model
    /// the converter handles without panicking.
    #[test]
    fn mutated_models_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..12)) {
        let mut bytes = mnist_bytes();
        for (pos, val, kind) in edits {
            if bytes.is_empty() { break; }
            let i = pos % bytes.len();
            match kind {
                0 => bytes[i] = val,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, val),
            }
        }
        if let Ok(m) = Model::from_bytes(bytes.into()) {
            let _ = converters::shapes::layer_costs(&m);
            for scope in [Scope::Auto, Scope::Global] {
                let p = Policy { scope, ..Policy::default() };
                if let Ok(c) = converters::convert::convert(&m, &p, None) {
                    prop_assert!(validate(c.model.graph()).is_empty() || !validate(m.graph()).is_empty());
                }
            }
        }
    }
}

/// Outcome of converting one generated case.
enum Outcome {
    Converted,
    Refused,
}

fn one_policy(
    (net, n, m, scope, keep, seed, stem, head, leaky): (&str, u32, u32, Scope, Keep, u64, bool, bool, Option<f32>),
) -> Result<Outcome, TestCaseError> {
    let model = Model::from_bytes(
        models::by_name(net, &ModelConfig::default())
            .unwrap()
            .encode_to_vec()
            .into(),
    )
    .unwrap();
    let policy = Policy {
        ratio: Ratio { n, m },
        scope,
        keep,
        seed,
        protect_stem: stem,
        protect_head: head,
        leaky,
        ..Policy::default()
    };
    match converters::convert::convert(&model, &policy, None) {
        Ok(c) => {
            prop_assert!(validate(c.model.graph()).is_empty());
            let outs = |x: &Model| x.graph().output.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
            prop_assert_eq!(outs(&model), outs(&c.model));
            for sc in &c.plan.scopes {
                prop_assert_eq!(
                    sc.eligible - sc.changed,
                    policy.ratio.kept(sc.eligible).min(sc.eligible)
                );
            }
            // Converting again with the saved plan is exact.
            let again = converters::convert::apply_plan(&model, &c.plan).unwrap();
            prop_assert_eq!(again.proto.encode_to_vec(), c.model.proto.encode_to_vec());
            Ok(Outcome::Converted)
        }
        Err(converters::convert::ConvertError::NothingToChange { .. }) => {
            // A refusal must be right: no scope has anything the ratio would remove.
            if let Err(why) = support::refusal_is_justified(&model, &policy) {
                return Err(TestCaseError::fail(format!("{net} {policy:?} refused: {why}")));
            }
            Ok(Outcome::Refused)
        }
        Err(e) => Err(TestCaseError::fail(e.to_string())),
    }
}

/// Any N:M policy on any reference network keeps graphs valid and counts exact, and refuses only where nothing
/// would change. The cases are counted: a converter that refused everything would pass every case on its own.
#[test]
fn any_policy_keeps_graphs_valid_and_counts_exact() {
    let strategy = (
        prop::sample::select(vec!["resnet20", "vgg", "densenet", "plain"]),
        1u32..6,
        1u32..5,
        prop::sample::select(vec![Scope::Auto, Scope::Block, Scope::Stage, Scope::Global]),
        prop::sample::select(vec![Keep::First, Keep::Last, Keep::Spread, Keep::Random]),
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0.01f32..0.5),
    )
        .prop_filter("N > M, or 1:1", |c| c.1 > c.2 || c.1 == 1 && c.2 == 1);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let config = ProptestConfig {
        cases,
        ..ProptestConfig::default()
    };
    let (converted, refused) = (Cell::new(0usize), Cell::new(0usize));
    let mut runner = proptest::test_runner::TestRunner::new(config.clone());
    let result = runner.run(&strategy, |case| {
        match one_policy(case)? {
            Outcome::Converted => converted.set(converted.get() + 1),
            Outcome::Refused => refused.set(refused.get() + 1),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (c, r) = (converted.get(), refused.get());
    eprintln!("{c} converted, {r} refused as changing nothing");
    // Passing runs (shrinking aside) count every case once.
    assert_eq!(c + r, config.cases as usize);
    // Refusals need small scopes, mild ratios or protected activations: about a third of random policies (88 of
    // 256 with the default seed), never most of them.
    assert!(r * 2 < c + r, "{r} refused against {c} converted");
}
