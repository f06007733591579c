//! The host's own types for the strategy contract: what a strategy describes and what a deploy plan
//! holds. They mirror `wit/strategy.wit` but belong to no WIT version, so the config loader, the driver
//! and the CLI never depend on generated bindings; `runtime::v0_1` converts at the boundary.

use crate::Release;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A typed parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamValue {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    DurationMs(u64),
    Integers(Vec<i64>),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean(b) => write!(f, "{b}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(s) => write!(f, "{s:?}"),
            Self::DurationMs(ms) => {
                f.write_str(&crate::duration::display(std::time::Duration::from_millis(*ms)))
            }
            Self::Integers(v) => write!(f, "{v:?}"),
        }
    }
}

/// The kind a parameter must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    Boolean,
    Integer,
    Float,
    Text,
    Duration,
    Integers,
    CountOrFraction,
}

impl ParamKind {
    /// How the kind reads in an error message ("expected ...").
    pub fn expected(self) -> &'static str {
        match self {
            Self::Boolean => "a boolean (true or false)",
            Self::Integer => "an integer",
            Self::Float => "a number",
            Self::Text => "a string",
            Self::Duration => "a duration such as \"30s\" or \"5m\"",
            Self::Integers => "a list of integers such as [10, 25, 50]",
            Self::CountOrFraction => "a count >= 1 or a fraction in (0, 1]",
        }
    }
}

/// One parameter a strategy accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    pub default: Option<ParamValue>,
    pub summary: String,
}

/// What a strategy says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyInfo {
    pub name: String,
    pub summary: String,
    pub params: Vec<ParamSpec>,
}

/// How many machines of a group may be out of service at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnavailable {
    Count(u32),
    Fraction(f64),
}

impl MaxUnavailable {
    /// The number of machines this allows in a group of `group_len` (never below one).
    pub fn allowed(self, group_len: usize) -> usize {
        match self {
            Self::Count(n) => n as usize,
            Self::Fraction(f) => (f * group_len as f64).ceil() as usize,
        }
        .max(1)
    }
}

impl fmt::Display for MaxUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Fraction(x) => write!(f, "{x}"),
        }
    }
}

/// Everything a strategy is told about one deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub app: String,
    pub target: Release,
    pub previous: Option<Release>,
    pub process_groups: Vec<String>,
    pub max_unavailable: MaxUnavailable,
    pub wait_timeout_ms: u64,
    pub kill_signal: String,
    pub kill_timeout_ms: u64,
    pub params: BTreeMap<String, ParamValue>,
}
