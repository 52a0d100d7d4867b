//! Graph surgery from a plan: remove (or leak) the chosen activations, record provenance, check the result.

use std::collections::HashSet;

use crate::act::ActKind;
use crate::error::IrError;
use crate::ir::Model;
use crate::ir::Patch;
use crate::ir::build::{Attr, node};
use crate::plan::{Decision, Plan, PlanError};
use crate::policy::Policy;
use crate::slots::{self, Structure};
use crate::validate::validate;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "{model}: no activation slots of kind {kinds} found (nothing to convert; `--act` opts in ReLU6/LeakyRelu/PRelu)"
    )]
    NoSlots { model: String, kinds: String },
    #[error(
        "{model}: the policy ({policy}) changes none of the {slots} activations; every scope keeps all of its eligible ones (try --scope global, or lift stem/head protection)"
    )]
    NothingToChange {
        model: String,
        policy: String,
        slots: usize,
    },
    #[error("{model}: {source}")]
    Plan { model: String, source: PlanError },
    #[error("{model}: {source}")]
    Ir { model: String, source: IrError },
    #[error("{model}: check failed after conversion: {reason}")]
    Check { model: String, reason: String },
}

pub struct Converted {
    pub model: Model,
    pub plan: Plan,
}

/// The slots of `model` for the policy's activation kinds.
pub fn structure(model: &Model, acts: &[ActKind]) -> Structure {
    slots::detect(model.graph(), acts)
}

/// Plan and apply `policy` to `model`. A 1:1 ratio returns the model unchanged (byte-identical on save).
pub fn convert(
    model: &Model,
    policy: &Policy,
    scores: Option<&std::collections::HashMap<String, f64>>,
) -> Result<Converted, ConvertError> {
    let name = model.display_name();
    let st = structure(model, &policy.acts);
    if st.slots.is_empty() {
        let kinds = policy.acts.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
        return Err(ConvertError::NoSlots { model: name, kinds });
    }
    let plan = crate::plan::make_plan(&st, policy, scores).map_err(|source| ConvertError::Plan {
        model: name.clone(),
        source,
    })?;
    if plan.is_identity() && !policy.ratio.is_identity() {
        return Err(ConvertError::NothingToChange {
            model: name,
            policy: policy.describe(),
            slots: plan.slots.len(),
        });
    }
    let model = apply_plan(model, &plan)?;
    Ok(Converted { model, plan })
}

/// Apply exactly the decisions of `plan` (from `convert` or a file given to `--apply-plan`).
pub fn apply_plan(model: &Model, plan: &Plan) -> Result<Model, ConvertError> {
    let name = model.display_name();
    let kinds: Vec<ActKind> = {
        let mut k: Vec<ActKind> = plan.slots.iter().map(|s| s.kind).collect();
        k.sort();
        k.dedup();
        k
    };
    let st = structure(model, &kinds);
    plan.check_against(&st).map_err(|source| ConvertError::Plan {
        model: name.clone(),
        source,
    })?;
    if plan.is_identity() {
        return Ok(model.clone());
    }
    let mut patch = Patch::default();
    for p in plan.changed() {
        let slot = st
            .slots
            .iter()
            .find(|s| s.name == p.name)
            .expect("checked by check_against");
        match p.decision {
            Decision::Remove => {
                patch.shunt(slot.node);
            }
            Decision::Leaky { alpha } => {
                let old = &model.graph().node[slot.node];
                let mut new = node(
                    "LeakyRelu",
                    &p.name,
                    &[&slot.input],
                    &[&slot.output],
                    vec![("alpha", Attr::Float(alpha))],
                );
                new.doc_string = old.doc_string.clone();
                patch.replace(slot.node, new);
            }
            Decision::Keep => {}
        }
        patch.note(format!("{:?} {}", p.decision, p.name));
    }
    let mut out = model.clone();
    patch.apply(out.graph_mut()).map_err(|source| ConvertError::Ir {
        model: name.clone(),
        source,
    })?;
    record_provenance(&mut out, model, plan);
    check_structure(&out, plan).map_err(|reason| ConvertError::Check { model: name, reason })?;
    out.source_sha256 = None;
    Ok(out)
}

fn record_provenance(out: &mut Model, src: &Model, plan: &Plan) {
    let changed: Vec<&str> = plan.changed().map(|s| s.name.as_str()).collect();
    out.set_metadata("ratio.ratio", plan.policy.ratio.to_string());
    out.set_metadata("ratio.policy", plan.policy.describe());
    out.set_metadata("ratio.scope", format!("{:?}", plan.scope).to_lowercase());
    let key = if plan.policy.leaky.is_some() {
        "ratio.leaked"
    } else {
        "ratio.removed"
    };
    out.set_metadata(key, changed.join(","));
    if let Some(sha) = &src.source_sha256 {
        out.set_metadata("ratio.source_sha256", sha.clone());
    }
    if let Some(p) = &src.path {
        out.set_metadata(
            "ratio.source",
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    out.set_metadata("ratio.tool_version", concat!("ratio ", env!("CARGO_PKG_VERSION")));
}

/// Structural validity, and the kept activations are exactly the plan's.
pub fn check_structure(out: &Model, plan: &Plan) -> Result<(), String> {
    let problems = validate(out.graph());
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let kinds: Vec<ActKind> = ActKind::ALL.to_vec();
    let after = slots::detect(out.graph(), &kinds);
    let present: HashSet<(&str, ActKind)> = after.slots.iter().map(|s| (s.name.as_str(), s.kind)).collect();
    for p in &plan.slots {
        let expect = match p.decision {
            Decision::Keep => Some(p.kind),
            Decision::Remove => None,
            Decision::Leaky { .. } => Some(ActKind::LeakyRelu),
        };
        let found = ActKind::ALL
            .into_iter()
            .find(|k| present.contains(&(p.name.as_str(), *k)));
        if found != expect {
            return Err(format!(
                "slot '{}' should be {:?} after conversion, found {:?}",
                p.name, expect, found
            ));
        }
    }
    for sc in &plan.scopes {
        let kept = plan
            .slots
            .iter()
            .filter(|s| s.decision == Decision::Keep && crate::plan::scope_label(plan.scope, s) == sc.scope)
            .count();
        if kept != sc.kept {
            return Err(format!(
                "{}: {} activations kept, the policy asks for {}",
                sc.scope, kept, sc.kept
            ));
        }
    }
    Ok(())
}
