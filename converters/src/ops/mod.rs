//! The one table of per-op knowledge. Each family file (`activation`, `conv`, `elementwise`, `layout`,
//! `linear`, `norm`, `pool`, `reduce`, `shape`) lists one [`OpSpec`] per op: its shape rule, gradient rule (or
//! an explicit "none"), activation class, slot-walking behaviour, affinity, and structure traits. Shape
//! inference, autodiff, slot detection, the activation policy, `inspect`'s layer costs and the leaky-ReLU
//! decomposition all read this table; none keeps a list of op names of its own. Registering an op twice is an
//! error. Gradient rule bodies live in `autodiff::ops::<op>` and are named by their spec.

pub mod activation;
pub mod common;
pub mod conv;
pub mod elementwise;
pub mod error;
pub mod layout;
pub mod linear;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod spec;

use std::collections::HashMap;
use std::sync::OnceLock;

pub use error::OpError;
pub use spec::{Act, Affine, DataInputs, OpSpec, Target, Walk};

use crate::ir::attr::NodeExt;
use crate::ops::error::Result;
use crate::proto::NodeProto;

/// Every family's specs, in the order the table is built.
pub const FAMILIES: &[&[OpSpec]] = &[
    activation::SPECS,
    conv::SPECS,
    elementwise::SPECS,
    layout::SPECS,
    linear::SPECS,
    norm::SPECS,
    pool::SPECS,
    reduce::SPECS,
    shape::SPECS,
];

pub struct Registry {
    specs: HashMap<&'static str, OpSpec>,
}

impl Registry {
    pub fn from_specs(families: &[&[OpSpec]]) -> Result<Self> {
        Self::build(families).map_err(|op| OpError::Duplicate(op.into()))
    }

    /// The table, or the first op registered twice.
    fn build(families: &[&[OpSpec]]) -> std::result::Result<Self, &'static str> {
        let mut specs = HashMap::new();
        for s in families.iter().flat_map(|f| f.iter()) {
            if specs.insert(s.op_type, *s).is_some() {
                return Err(s.op_type);
            }
        }
        Ok(Registry { specs })
    }

    pub fn get(&self, op_type: &str) -> Option<&OpSpec> {
        self.specs.get(op_type)
    }

    /// The spec of a node in the default domain (other domains are unknown ops).
    pub fn of(&self, n: &NodeProto) -> Option<&OpSpec> {
        if n.domain_str().is_empty() {
            self.get(n.op())
        } else {
            None
        }
    }

    /// Registered op types, sorted.
    pub fn op_types(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.specs.keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn specs(&self) -> impl Iterator<Item = &OpSpec> {
        self.specs.values()
    }
}

/// The table, built once. A double registration is reported by every call (and caught by the crate's tests).
pub fn registry() -> Result<&'static Registry> {
    static TABLE: OnceLock<std::result::Result<Registry, &'static str>> = OnceLock::new();
    TABLE
        .get_or_init(|| Registry::build(FAMILIES))
        .as_ref()
        .map_err(|op| OpError::Duplicate((*op).into()))
}

/// The spec of `n`, when the table knows its op.
pub fn spec_of(n: &NodeProto) -> Option<&'static OpSpec> {
    registry().ok()?.of(n)
}
