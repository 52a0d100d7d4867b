//! The placement policy: ratio N:M × scope × keep rule × include/exclude patterns × stem/head protection.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::act::ActKind;

/// N convolutions per M activations. `1:1` is the identity (the baseline of a sweep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ratio {
    pub n: u32,
    pub m: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatioError {
    #[error("ratio '{0}' is not of the form N:M (for example 2:1)")]
    Syntax(String),
    #[error("ratio '{0}': N and M must be at least 1")]
    Zero(String),
    #[error(
        "ratio '{0}': N must be greater than M (need N ≥ M ≥ 1: N convolutions per M ReLUs), or 1:1 for the identity"
    )]
    Order(String),
}

impl FromStr for Ratio {
    type Err = RatioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [n, m] = parts.as_slice() else {
            return Err(RatioError::Syntax(s.into()));
        };
        let parse = |x: &str| x.trim().parse::<u32>().map_err(|_| RatioError::Syntax(s.into()));
        let (n, m) = (parse(n)?, parse(m)?);
        if n == 0 || m == 0 {
            return Err(RatioError::Zero(s.into()));
        }
        if n < m || (n == m && n != 1) {
            return Err(RatioError::Order(s.into()));
        }
        Ok(Ratio { n, m })
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

impl Ratio {
    pub const ONE: Ratio = Ratio { n: 1, m: 1 };

    pub fn is_identity(self) -> bool {
        self.n == self.m
    }

    /// N/M as a number, for plotting ratios on an axis.
    pub fn value(self) -> f64 {
        f64::from(self.n) / f64::from(self.m)
    }

    /// Activations kept among `eligible` slots of one scope: ceil(eligible · M / N), so a scope never loses
    /// more than the ratio asks for (a 3-slot stage at 2:1 keeps 2).
    pub fn kept(self, eligible: usize) -> usize {
        (eligible * self.m as usize).div_ceil(self.n as usize)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `block` when the graph has residual/concat joins, `stage` for plain chains.
    #[default]
    Auto,
    Block,
    Stage,
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// Keep the first activations of each scope.
    First,
    /// Keep the last ones (each block ends with its activation, as in the original 1:1 layout).
    #[default]
    Last,
    /// Evenly spaced, ending on an activation: conv,conv,relu,conv,conv,relu at 2:1 (the proportional module).
    Spread,
    /// A seeded random choice.
    Random,
    /// Keep those whose inputs carry the most negative mass (data-aware; scores supplied by the caller).
    ByNegativeMass,
}

/// Named presets from the literature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// EraseReLU (Dong et al. 2017): remove the last activation of every block.
    EraseLast,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub ratio: Ratio,
    pub scope: Scope,
    pub keep: Keep,
    pub seed: u64,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub protect_stem: bool,
    pub protect_head: bool,
    pub acts: Vec<ActKind>,
    pub preset: Option<Preset>,
    /// Replace with LeakyRelu(α) instead of removing.
    pub leaky: Option<f32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            ratio: Ratio { n: 2, m: 1 },
            scope: Scope::Auto,
            keep: Keep::Last,
            seed: 0,
            include: vec![],
            exclude: vec![],
            protect_stem: true,
            protect_head: true,
            acts: vec![ActKind::Relu],
            preset: None,
            leaky: None,
        }
    }
}

impl Policy {
    /// One-line summary for logs and provenance.
    pub fn describe(&self) -> String {
        let mut s = match self.preset {
            Some(Preset::EraseLast) => "preset=erase-last".to_string(),
            None => format!(
                "ratio={} scope={} keep={}",
                self.ratio,
                serde_name(&self.scope),
                serde_name(&self.keep)
            ),
        };
        if self.keep == Keep::Random {
            s += &format!(" seed={}", self.seed);
        }
        if let Some(a) = self.leaky {
            s += &format!(" leaky={a}");
        }
        s += &format!(
            " acts={} protect_stem={} protect_head={}",
            self.acts.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","),
            self.protect_stem,
            self.protect_head
        );
        for i in &self.include {
            s += &format!(" include={i}");
        }
        for e in &self.exclude {
            s += &format!(" exclude={e}");
        }
        s
    }
}

/// The name serde gives a unit variant (`by-negative-mass`), so logs, provenance and plans spell it one way.
fn serde_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_parses_valid_and_rejects_invalid() {
        assert_eq!("2:1".parse::<Ratio>().unwrap(), Ratio { n: 2, m: 1 });
        assert_eq!(" 3:2 ".parse::<Ratio>().unwrap(), Ratio { n: 3, m: 2 });
        assert!("1:1".parse::<Ratio>().unwrap().is_identity());
        assert!(matches!("2:3".parse::<Ratio>(), Err(RatioError::Order(_))));
        assert!(matches!("2:2".parse::<Ratio>(), Err(RatioError::Order(_))));
        assert!(matches!("0:1".parse::<Ratio>(), Err(RatioError::Zero(_))));
        assert!(matches!("2:0".parse::<Ratio>(), Err(RatioError::Zero(_))));
        for bad in ["abc", "3:1:1", "", "2", "-2:1", "2.5:1"] {
            assert!(matches!(bad.parse::<Ratio>(), Err(RatioError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn kept_rounds_up() {
        let r = Ratio { n: 2, m: 1 };
        assert_eq!((r.kept(1), r.kept(2), r.kept(3), r.kept(4)), (1, 1, 2, 2));
        let r = Ratio { n: 3, m: 2 };
        assert_eq!((r.kept(3), r.kept(4), r.kept(6)), (2, 3, 4));
        assert_eq!(Ratio { n: 1, m: 1 }.kept(5), 5);
    }
}
