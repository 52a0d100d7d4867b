//! Adapting an export to train, without running it: static batches rewritten by dataflow (and refused with an
//! actionable error where no rewrite works), exporter-tied tensors untied, shape-computed targets folded, and one
//! join rule for slot detection and richness.

use std::collections::HashMap;

use converters::Model;
use converters::autodiff::{Adaptation, BnMode, GradError, StateKind, TrainStepConfig, build_train_step};
use converters::ir::attr::NodeExt;
use converters::ir::build::{self, GraphBuilder, value_info_dims};
use converters::ir::index::GraphIndex;
use converters::proto::tensor_proto::DataType;
use models::idioms;

fn cfg(batch: i64) -> TrainStepConfig {
    TrainStepConfig {
        batch_size: batch,
        ..Default::default()
    }
}

fn rewrites(step: &converters::autodiff::TrainStep) -> Vec<(String, Vec<i64>, Vec<i64>)> {
    let mut v: Vec<_> = step
        .adaptations
        .iter()
        .filter_map(|a| match a {
            Adaptation::Rebatched(r) => Some((r.node.clone(), r.from.clone(), r.to.clone())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_static_batch_is_rewritten_where_the_dim_traces_to_the_input_batch() {
    let m = Model::new(idioms::dynamo_static_flatten());
    // At the exported batch nothing changes.
    let step = build_train_step(&m, &cfg(2)).unwrap();
    assert!(rewrites(&step).is_empty());
    for batch in [1, 3, 4] {
        let step = build_train_step(&m, &cfg(batch)).unwrap_or_else(|e| panic!("batch {batch}: {e}"));
        // The group count 2 in the shuffle and the scale's leading 2 do not follow the batch.
        assert_eq!(
            rewrites(&step),
            vec![
                ("node_view".into(), vec![2, 8], vec![batch, 8]),
                ("node_view_shuffle".into(), vec![2, 2, 4, 8, 8], vec![batch, 2, 4, 8, 8]),
                ("node_view_unshuffle".into(), vec![2, 8, 8, 8], vec![batch, 8, 8, 8]),
            ],
            "batch {batch}"
        );
        assert_eq!(step.input_shape, vec![batch, 3, 8, 8]);
        let msg = step.adaptations[0].to_string();
        assert!(msg.contains("rewritten to") && msg.contains("node_view"), "{msg}");
    }
}

#[test]
fn a_batch_that_cannot_be_rewritten_names_the_node_and_the_batch_that_works() {
    // The batch merged into another dim: [2, 8, 2, 2] → [16, 2, 2] regroups batch × channels, and [4, 4, 2, 2]
    // splits them again in a way whose batch part cannot be told.
    let mut b = GraphBuilder::new("merged");
    b.input("input", DataType::Float, &[Some(2), Some(8), Some(2), Some(2)]);
    let t = b.init_i64("t", &[3], &[16, 2, 2]);
    let merged = b.op("Reshape", "merge", &["input", &t], vec![]);
    let t2 = b.init_i64("t2", &[4], &[4, 4, 2, 2]);
    let split = b.op("Reshape", "resplit", &[&merged, &t2], vec![]);
    let w = b.init_f32("w", &[3, 4, 1, 1], &[0.1; 12]);
    let c = b.op("Conv", "conv", &[&split, &w], vec![]);
    let p = b.op("GlobalAveragePool", "pool", &[&c], vec![]);
    let f = b.op("Flatten", "logits", &[&p], vec![]);
    b.output(&f, DataType::Float, &[Some(4), Some(3)]);
    let m = Model::new(build::model(b.finish(), "t"));
    let err = build_train_step(&m, &cfg(3)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            GradError::StaticBatch {
                exported: 2,
                requested: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("'resplit/Reshape' (Reshape)") && msg.contains("--batch 2"),
        "{msg}"
    );
}

#[test]
fn a_dynamic_batch_export_needs_no_rewrite() {
    let m = Model::new(idioms::shufflenet_shape_shuffle());
    for batch in [1, 3, 8] {
        let step = build_train_step(&m, &cfg(batch)).unwrap_or_else(|e| panic!("batch {batch}: {e}"));
        assert!(rewrites(&step).is_empty());
        assert_eq!(step.input_shape[0], batch);
    }
}

#[test]
fn exporter_tied_bn_tensors_are_untied_and_written_back_separately() {
    let m = Model::new(idioms::dedup_bn_identity());
    let step = build_train_step(&m, &cfg(4)).unwrap();
    let of = |kind: StateKind| -> Vec<&str> {
        let mut v: Vec<&str> = step
            .state
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.name.as_str())
            .collect();
        v.sort();
        v
    };
    let bns = ["bn1", "layer1.0.bn1", "layer1.0.bn2"];
    let want = |field: &str| -> Vec<String> { bns.iter().map(|b| format!("{b}.{field}")).collect() };
    assert_eq!(of(StateKind::RunningMean), want("running_mean"));
    assert_eq!(of(StateKind::RunningVar), want("running_var"));
    let params = of(StateKind::Param);
    for p in want("weight").iter().chain(&want("bias")) {
        assert!(
            params.contains(&p.as_str()),
            "{p} does not train on its own: {params:?}"
        );
    }
    let untied: Vec<String> = step
        .adaptations
        .iter()
        .filter(|a| matches!(a, Adaptation::Untied(_)))
        .map(|a| a.to_string())
        .collect();
    assert_eq!(untied.len(), 4, "{untied:?}");
    assert!(
        untied
            .iter()
            .any(|u| u.contains("running statistic 'bn1.running_mean'"))
    );
    // Distinct values per tensor come back as distinct initializers; no Identity ties them any more.
    let values: Vec<Vec<f32>> = step
        .state
        .iter()
        .enumerate()
        .map(|(i, s)| vec![i as f32; s.init.len()])
        .collect();
    let back = step.to_inference(&values).unwrap();
    let g = back.graph();
    assert!(g.node.iter().all(|n| n.op() != "Identity"));
    for (s, v) in step.state.iter().zip(&values) {
        if matches!(
            s.kind,
            StateKind::Param | StateKind::RunningMean | StateKind::RunningVar
        ) {
            let t = g
                .initializer
                .iter()
                .find(|t| t.name.as_deref() == Some(s.name.as_str()))
                .unwrap();
            assert_eq!(&converters::ir::tensor::to_f32(t, None).unwrap(), v, "{}", s.name);
        }
    }
    // Frozen BN keeps the statistics constant, so only the parameters need their own copies.
    let frozen = build_train_step(
        &m,
        &TrainStepConfig {
            bn: BnMode::Frozen,
            ..cfg(4)
        },
    )
    .unwrap();
    assert!(frozen.state.iter().all(|s| s.kind != StateKind::RunningMean));
    assert_eq!(
        frozen
            .adaptations
            .iter()
            .filter(|a| matches!(a, Adaptation::Untied(_)))
            .count(),
        2
    );
}

#[test]
fn a_parameter_shared_under_one_name_stays_shared() {
    // One weight read by two convs under the same name is reuse, not deduplication.
    let mut b = GraphBuilder::new("shared");
    b.input("input", DataType::Float, &[None, Some(2), Some(4), Some(4)]);
    let w = b.init_f32("w", &[2, 2, 1, 1], &[0.5, 0.1, -0.2, 0.3]);
    let c1 = b.op("Conv", "c1", &["input", &w], vec![]);
    let c2 = b.op("Conv", "c2", &[&c1, &w], vec![]);
    let p = b.op("GlobalAveragePool", "pool", &[&c2], vec![]);
    let f = b.op("Flatten", "logits", &[&p], vec![]);
    b.output(&f, DataType::Float, &[None, Some(2)]);
    let step = build_train_step(&Model::new(build::model(b.finish(), "t")), &cfg(2)).unwrap();
    assert!(step.adaptations.is_empty());
    assert_eq!(step.state.iter().filter(|s| s.kind == StateKind::Param).count(), 1);
}

#[test]
fn every_fixture_builds_a_valid_train_step_at_several_batches() {
    for (name, build_fixture) in idioms::all() {
        let m = Model::new(build_fixture());
        for batch in [2, 5] {
            let step = build_train_step(&m, &cfg(batch)).unwrap_or_else(|e| panic!("{name} at {batch}: {e}"));
            let g = step.model.graph.as_ref().unwrap();
            assert!(converters::validate::validate(g).is_empty(), "{name}");
            assert_eq!(step.num_classes, 10);
            assert!(step.model.ir_version.unwrap() <= 10);
        }
    }
}

#[test]
fn the_shared_join_rule_sees_shufflenet_concats_and_skips_shape_arithmetic() {
    let m = idioms::shufflenet_shape_shuffle();
    let g = m.graph.as_ref().unwrap();
    let ix = GraphIndex::new(g);
    let joins: Vec<&str> = g
        .node
        .iter()
        .filter(|n| converters::slots::is_join(g, &ix, n))
        .map(|n| n.name_or_output())
        .collect();
    // Concat(Slice(x), branch2(x)) ends the unit; the Concats that build Reshape targets are bookkeeping.
    assert_eq!(joins, vec!["concat"]);
    // A residual Add is a join; an Add of two shape values is not.
    let mut b = GraphBuilder::new("t");
    b.input("x", DataType::Float, &[None, Some(2), Some(4), Some(4)]);
    let w = b.init_f32("w", &[2, 2, 1, 1], &[1.0; 4]);
    let c = b.op("Conv", "c", &["x", &w], vec![]);
    let r = b.op("Relu", "r", &[&c], vec![]);
    let res = b.op("Add", "res", &[&r, &c], vec![]);
    let s1 = b.op("Shape", "s1", &[&res], vec![]);
    let s2 = b.op("Shape", "s2", &[&c], vec![]);
    b.op("Add", "shape_sum", &[&s1, &s2], vec![]);
    let g = b.finish();
    let ix = GraphIndex::new(&g);
    let joins: Vec<&str> = g
        .node
        .iter()
        .filter(|n| converters::slots::is_join(&g, &ix, n))
        .map(|n| n.output[0].as_str())
        .collect();
    assert_eq!(joins, vec!["res"]);
}

#[test]
fn static_batch_dims_of_outputs_and_value_info_follow_the_rewrite() {
    let m = Model::new(idioms::dynamo_static_flatten());
    let reg = converters::ops::registry().unwrap();
    let (work, _) = converters::autodiff::rebatch::rebatch(&m, reg, "input", 6).unwrap();
    let g = work.graph();
    assert_eq!(value_info_dims(&g.input[0]).unwrap()[0], Some(6));
    assert_eq!(value_info_dims(&g.output[0]).unwrap(), vec![Some(6), Some(10)]);
    let view = g
        .value_info
        .iter()
        .find(|v| v.name.as_deref() == Some("node_view"))
        .unwrap();
    assert_eq!(value_info_dims(view).unwrap(), vec![Some(6), Some(8)]);
    // The rewritten graph infers at its new batch with no help.
    let s = converters::shapes::infer(&work, &HashMap::new(), None);
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    assert_eq!(s.shape("logits"), Some(&[6, 10][..]));
}

#[test]
fn adaptations_summarize_to_one_line_per_kind() {
    let step = build_train_step(&Model::new(idioms::dynamo_static_flatten()), &cfg(4)).unwrap();
    let lines = converters::autodiff::summarize(&step.adaptations);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("rewrote 3 constant targets") && lines[0].contains("[2, 2, 4, 8, 8] → [4, 2, 4, 8, 8]"),
        "{lines:?}"
    );
    let step = build_train_step(&Model::new(idioms::dedup_bn_identity()), &cfg(4)).unwrap();
    let lines = converters::autodiff::summarize(&step.adaptations);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("4 parameters that were separate"), "{lines:?}");
    assert!(lines[1].contains("4 BatchNorm running statistics"), "{lines:?}");
}
