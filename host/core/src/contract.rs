//! The host's own types for the strategy contract: what a strategy describes and what a deploy plan
//! holds. They mirror `wit/strategy.wit` but belong to no WIT version, so the config loader, the driver
//! and the CLI never depend on generated bindings; `runtime::v0_1` converts at the boundary.

use crate::machine::Release;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A typed strategy parameter value, checked by the host against `describe()` before `deploy` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamValue {
    /// `true` or `false`.
    Boolean(bool),
    /// A whole number.
    Integer(i64),
    /// A number that may have a fraction (also how a count-or-fraction's fraction arrives).
    Float(f64),
    /// A string.
    Text(String),
    /// Durations are given in config as "10s", "5m" or "1h30m"; the strategy sees milliseconds.
    DurationMs(u64),
    /// A list of whole numbers, such as canary steps `[10, 25, 50]`.
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

/// The kind a parameter must have; config values of another kind are rejected before `deploy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// Given as [`ParamValue::Boolean`].
    Boolean,
    /// Given as [`ParamValue::Integer`].
    Integer,
    /// Given as [`ParamValue::Float`].
    Float,
    /// Given as [`ParamValue::Text`].
    Text,
    /// Written as a duration in config; given as [`ParamValue::DurationMs`].
    Duration,
    /// Given as [`ParamValue::Integers`].
    Integers,
    /// A count (>= 1) or a fraction in (0, 1], like `max_unavailable`; given as an
    /// [`ParamValue::Integer`] count or a [`ParamValue::Float`] fraction.
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
    /// The key under `[cutover.params]` in the config.
    pub name: String,
    /// The kind its value must have.
    pub kind: ParamKind,
    /// Used when the config does not set the parameter; `None` means the parameter is required.
    pub default: Option<ParamValue>,
    /// One line for `cutover strategies` and `cutover inspect`.
    pub summary: String,
}

/// What a strategy says about itself (`describe()`; shown by `cutover strategies`, `cutover inspect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyInfo {
    /// The strategy's name ("rolling", "canary", ...).
    pub name: String,
    /// One line on what it does.
    pub summary: String,
    /// The parameters it accepts, with their defaults.
    pub params: Vec<ParamSpec>,
}

/// How many machines of a group may be out of service at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnavailable {
    /// An absolute number of machines (at least 1).
    Count(u32),
    /// A fraction of the group in (0, 1]; rounded up, never below one machine.
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

/// Everything a strategy is told about one deploy (the contract's `deploy-plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    /// The app deployed.
    pub app: String,
    /// The release to move to.
    pub target: Release,
    /// The release most machines run now; `None` for an app's first deploy.
    pub previous: Option<Release>,
    /// Process groups present in the app.
    pub process_groups: Vec<String>,
    /// `[deploy] max_unavailable` (default 0.33).
    pub max_unavailable: MaxUnavailable,
    /// `[deploy] wait_timeout` in milliseconds (default 5 minutes): the bound for each wait.
    pub wait_timeout_ms: u64,
    /// `kill_signal` (default "SIGINT").
    pub kill_signal: String,
    /// `kill_timeout` in milliseconds (default 5 s).
    pub kill_timeout_ms: u64,
    /// Parameters from config, completed with `describe()` defaults and type-checked. A map here (the
    /// contract passes a list of pairs), so lookups by name are cheap and the order is stable.
    pub params: BTreeMap<String, ParamValue>,
}
