//! The plan: every slot with its block, stage, role and decision. `--plan` prints it without writing anything;
//! `--apply-plan` reads a saved or hand-edited one and applies exactly its decisions.

use std::collections::{BTreeMap, HashMap};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::act::ActKind;
use crate::policy::{Keep, Policy, Preset, Scope};
use crate::slots::{Role, Structure};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum Decision {
    Keep,
    Remove,
    /// Replace by LeakyRelu(alpha).
    Leaky {
        alpha: f32,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedSlot {
    pub name: String,
    pub kind: ActKind,
    pub block: usize,
    pub stage: usize,
    pub depth: usize,
    pub role: Role,
    pub feeders: Vec<String>,
    /// Why the slot is not eligible (protected stem/head, excluded by a pattern), if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Negative-mass score, for the data-aware keep rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub decision: Decision,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopeCount {
    pub scope: String,
    pub slots: usize,
    pub eligible: usize,
    pub kept: usize,
    pub changed: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    pub policy: Policy,
    /// The scope used (`auto` resolved to block or stage).
    pub scope: Scope,
    pub slots: Vec<PlannedSlot>,
    pub scopes: Vec<ScopeCount>,
}

pub const PLAN_FORMAT: &str = "ratio.plan/v1";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid pattern '{pattern}': {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("--keep by-negative-mass needs scores (give --data and --preset)")]
    MissingScores,
    #[error("plan names slot '{0}', which is not an activation of this model")]
    UnknownSlot(String),
    #[error("plan is for a different model: {0}")]
    Mismatch(String),
}

fn compile(patterns: &[String]) -> Result<Vec<Regex>, PlanError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| PlanError::Pattern {
                pattern: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Decide every slot under `policy`. `scores` maps activation names to negative-mass scores.
pub fn make_plan(st: &Structure, policy: &Policy, scores: Option<&HashMap<String, f64>>) -> Result<Plan, PlanError> {
    let include = compile(&policy.include)?;
    let exclude = compile(&policy.exclude)?;
    if policy.keep == Keep::ByNegativeMass && scores.is_none() {
        return Err(PlanError::MissingScores);
    }
    let scope = match policy.scope {
        Scope::Auto => auto_scope(st),
        s => s,
    };
    let changed = match policy.leaky {
        Some(alpha) => Decision::Leaky { alpha },
        None => Decision::Remove,
    };
    let mut slots: Vec<PlannedSlot> = st
        .slots
        .iter()
        .map(|s| {
            let held = if policy.protect_stem && s.role == Role::Stem {
                Some("stem (protected; --no-protect-stem lifts it)".to_string())
            } else if policy.protect_head && s.role == Role::Head {
                Some("head (protected; --no-protect-head lifts it)".to_string())
            } else if !include.is_empty() && !include.iter().any(|r| r.is_match(&s.name)) {
                Some("not matched by --include".to_string())
            } else if exclude.iter().any(|r| r.is_match(&s.name)) {
                Some("matched by --exclude".to_string())
            } else {
                None
            };
            PlannedSlot {
                name: s.name.clone(),
                kind: s.kind,
                block: s.block,
                stage: s.stage,
                depth: s.depth,
                role: s.role,
                feeders: s.feeders.clone(),
                held,
                score: scores.and_then(|m| m.get(&s.name).copied()),
                decision: Decision::Keep,
            }
        })
        .collect();

    let mut groups: BTreeMap<(usize, String), Vec<usize>> = BTreeMap::new();
    for (i, p) in slots.iter().enumerate() {
        let order = match scope {
            Scope::Block => p.block,
            Scope::Stage => p.stage,
            _ => 0,
        };
        groups.entry((order, scope_label(scope, p))).or_default().push(i);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(policy.seed);
    let mut scopes = Vec::new();
    for ((_, name), members) in &groups {
        let eligible: Vec<usize> = members.iter().copied().filter(|&i| slots[i].held.is_none()).collect();
        let kept_idx: Vec<usize> = match policy.preset {
            // EraseReLU: every block loses its last eligible activation.
            Some(Preset::EraseLast) => eligible[..eligible.len().saturating_sub(1)].to_vec(),
            None => choose(
                &eligible,
                policy.ratio.kept(eligible.len()),
                policy.keep,
                &slots,
                &mut rng,
            ),
        };
        for &i in &eligible {
            if !kept_idx.contains(&i) {
                slots[i].decision = changed;
            }
        }
        scopes.push(ScopeCount {
            scope: name.clone(),
            slots: members.len(),
            eligible: eligible.len(),
            kept: members.len() - (eligible.len() - kept_idx.len()),
            changed: eligible.len() - kept_idx.len(),
        });
    }
    Ok(Plan {
        format: PLAN_FORMAT.into(),
        policy: policy.clone(),
        scope,
        slots,
        scopes,
    })
}

/// `auto`: blocks for residual/concat nets; stages for plain chains with several activations per stage; the whole
/// network when every stage holds one (a VGG-like net with one conv per resolution, such as a small MNIST CNN).
pub fn auto_scope(st: &Structure) -> Scope {
    if st.has_joins {
        return Scope::Block;
    }
    let mut per_stage = vec![0usize; st.num_stages];
    for s in &st.slots {
        per_stage[s.stage] += 1;
    }
    if per_stage.iter().any(|&n| n >= 2) {
        Scope::Stage
    } else {
        Scope::Global
    }
}

/// The name of the scope a slot belongs to, e.g. `block 3`.
pub fn scope_label(scope: Scope, p: &PlannedSlot) -> String {
    match scope {
        Scope::Block => format!("block {}", p.block),
        Scope::Stage => format!("stage {}", p.stage),
        _ => "global".to_string(),
    }
}

/// Pick `k` of the `eligible` slot indices (given in topological order) by the keep rule.
fn choose(
    eligible: &[usize],
    k: usize,
    keep: Keep,
    slots: &[PlannedSlot],
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Vec<usize> {
    let n = eligible.len();
    if k >= n {
        return eligible.to_vec();
    }
    match keep {
        Keep::First => eligible[..k].to_vec(),
        Keep::Last => eligible[n - k..].to_vec(),
        // Position (j+1)·n/k − 1: with n = 4, k = 2 keeps the 2nd and 4th, i.e. conv,conv,relu repeated.
        Keep::Spread => (0..k).map(|j| eligible[((j + 1) * n).div_ceil(k) - 1]).collect(),
        Keep::Random => {
            let mut v = eligible.to_vec();
            v.shuffle(rng);
            let mut chosen = v[..k].to_vec();
            chosen.sort_unstable();
            chosen
        }
        Keep::ByNegativeMass => {
            // Removing an activation changes the function least where its input is mostly ≥ 0, so keep those
            // with the most negative mass. Ties break by depth for determinism.
            let mut v = eligible.to_vec();
            v.sort_by(|&a, &b| {
                let (sa, sb) = (slots[a].score.unwrap_or(0.0), slots[b].score.unwrap_or(0.0));
                sb.total_cmp(&sa).then(a.cmp(&b))
            });
            let mut chosen = v[..k].to_vec();
            chosen.sort_unstable();
            chosen
        }
    }
}

impl Plan {
    pub fn changed(&self) -> impl Iterator<Item = &PlannedSlot> {
        self.slots.iter().filter(|s| s.decision != Decision::Keep)
    }

    pub fn is_identity(&self) -> bool {
        self.changed().next().is_none()
    }

    /// Check a loaded plan against the model's own slots before applying it.
    pub fn check_against(&self, st: &Structure) -> Result<(), PlanError> {
        let names: HashMap<&str, ActKind> = st.slots.iter().map(|s| (s.name.as_str(), s.kind)).collect();
        for p in &self.slots {
            match names.get(p.name.as_str()) {
                None => return Err(PlanError::UnknownSlot(p.name.clone())),
                Some(&k) if k != p.kind => {
                    return Err(PlanError::Mismatch(format!(
                        "slot '{}' is {:?} in the model, {:?} in the plan",
                        p.name, k, p.kind
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
