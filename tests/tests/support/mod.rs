//! Helpers shared by the converter tests.

#![allow(dead_code)]

use converters::convert::structure;
use converters::ir::Model;
use converters::plan::make_plan;
use converters::policy::{Keep, Policy, Scope};

/// The default policy with this ratio (`"N:M"`), scope and keep rule.
pub fn policy(ratio: &str, scope: Scope, keep: Keep) -> Policy {
    Policy {
        ratio: ratio.parse().unwrap(),
        scope,
        keep,
        ..Policy::default()
    }
}

/// Why a `NothingToChange` refusal is right, checked independently of `convert`: planning the policy on the
/// model's slots must leave every scope with nothing to remove, because ⌈E·M/N⌉ already keeps all E eligible
/// activations. `Err` names the scope that could have changed (a converter that refuses too eagerly).
pub fn refusal_is_justified(model: &Model, policy: &Policy) -> Result<(), String> {
    let st = structure(model, &policy.acts);
    let plan = make_plan(&st, policy, None).map_err(|e| format!("planning failed: {e}"))?;
    if !plan.is_identity() {
        return Err(format!("the plan changes {} activations", plan.changed().count()));
    }
    match plan.scopes.iter().find(|s| policy.ratio.kept(s.eligible) < s.eligible) {
        Some(s) => Err(format!(
            "scope {} has {} eligible activations and {} keeps only {}",
            s.scope,
            s.eligible,
            policy.ratio,
            policy.ratio.kept(s.eligible)
        )),
        None => Ok(()),
    }
}
