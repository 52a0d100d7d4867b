//! Property tests standing in for a fuzzer: the loader never panics on mutated model bytes, and the converter,
//! under any policy, keeps graphs valid, output names unchanged and per-scope counts equal to the policy.
//! `PROPTEST_CASES=N` runs longer campaigns (the issue note records one).

use converters::ir::Model;
use converters::policy::{Keep, Policy, Ratio, Scope};
use converters::validate::validate;
use models::ModelConfig;
use proptest::prelude::*;
use prost::Message;

fn mnist_bytes() -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/mnist_cnn.onnx")).unwrap()
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

    #[test]
    fn any_policy_keeps_graphs_valid_and_counts_exact(
        net in prop::sample::select(vec!["resnet20", "vgg", "densenet", "plain"]),
        n in 1u32..6, m in 1u32..5,
        scope in prop::sample::select(vec![Scope::Auto, Scope::Block, Scope::Stage, Scope::Global]),
        keep in prop::sample::select(vec![Keep::First, Keep::Last, Keep::Spread, Keep::Random]),
        seed in any::<u64>(), stem in any::<bool>(), head in any::<bool>(), leaky in prop::option::of(0.01f32..0.5),
    ) {
        prop_assume!(n > m || n == 1 && m == 1);
        let model = Model::from_bytes(models::by_name(net, &ModelConfig::default()).unwrap().encode_to_vec().into()).unwrap();
        let policy = Policy { ratio: Ratio { n, m }, scope, keep, seed, protect_stem: stem, protect_head: head, leaky, ..Policy::default() };
        match converters::convert::convert(&model, &policy, None) {
            Ok(c) => {
                prop_assert!(validate(c.model.graph()).is_empty());
                let outs = |x: &Model| x.graph().output.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
                prop_assert_eq!(outs(&model), outs(&c.model));
                for sc in &c.plan.scopes {
                    prop_assert_eq!(sc.eligible - sc.changed, policy.ratio.kept(sc.eligible).min(sc.eligible));
                }
                // Converting again with the saved plan is exact.
                let again = converters::convert::apply_plan(&model, &c.plan).unwrap();
                prop_assert_eq!(again.proto.encode_to_vec(), c.model.proto.encode_to_vec());
            }
            Err(converters::convert::ConvertError::NothingToChange { .. }) => {}
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}
