//! Parameters: declared in `describe` (name, kind, default, summary), read in `deploy`.
//!
//! The host checks config values against the declared kinds and fills in defaults before `deploy`
//! runs, so a getter normally finds the value. The getters still take a default: the same constant
//! used in `describe` keeps a strategy correct when run by a host that skipped the check (a test
//! harness, an older host), instead of panicking inside the sandbox.

use crate::runtime;
use crate::types::{ParamKind, ParamSpec, ParamValue};

/// A spec with a default; the builders below are shorthands for it.
fn spec(name: &str, kind: ParamKind, default: Option<ParamValue>, summary: &str) -> ParamSpec {
    ParamSpec { name: name.into(), kind, default, summary: summary.into() }
}

/// A boolean parameter (`true` / `false` in config).
pub fn boolean(name: &str, default: bool, summary: &str) -> ParamSpec {
    spec(name, ParamKind::Boolean, Some(ParamValue::Boolean(default)), summary)
}

/// An integer parameter.
pub fn integer(name: &str, default: i64, summary: &str) -> ParamSpec {
    spec(name, ParamKind::Integer, Some(ParamValue::Integer(default)), summary)
}

/// A floating-point parameter.
pub fn float(name: &str, default: f64, summary: &str) -> ParamSpec {
    spec(name, ParamKind::Float, Some(ParamValue::Float(default)), summary)
}

/// A text parameter.
pub fn text(name: &str, default: &str, summary: &str) -> ParamSpec {
    spec(name, ParamKind::Text, Some(ParamValue::Text(default.into())), summary)
}

/// A duration parameter: "10s", "5m", "1h30m" in config, milliseconds in `deploy`.
pub fn duration(name: &str, default_ms: u64, summary: &str) -> ParamSpec {
    spec(name, ParamKind::Duration, Some(ParamValue::DurationMs(default_ms)), summary)
}

/// A list-of-integers parameter (`[10, 25, 50]` in config).
pub fn integers(name: &str, default: &[i64], summary: &str) -> ParamSpec {
    spec(name, ParamKind::Integers, Some(ParamValue::Integers(default.to_vec())), summary)
}

/// A parameter without a default: the host refuses to deploy unless the config sets it.
pub fn required(name: &str, kind: ParamKind, summary: &str) -> ParamSpec {
    spec(name, kind, None, summary)
}

/// A boolean parameter of this deploy, or `default`.
pub fn get_bool(name: &str, default: bool) -> bool {
    match runtime::param(name) {
        Some(ParamValue::Boolean(b)) => b,
        _ => default,
    }
}

/// An integer parameter of this deploy, or `default`.
pub fn get_int(name: &str, default: i64) -> i64 {
    match runtime::param(name) {
        Some(ParamValue::Integer(n)) => n,
        _ => default,
    }
}

/// An integer parameter used as a count: negative values count as 0, huge ones as `u32::MAX`.
pub fn get_count(name: &str, default: u32) -> u32 {
    match runtime::param(name) {
        Some(ParamValue::Integer(n)) => n.clamp(0, i64::from(u32::MAX)) as u32,
        _ => default,
    }
}

/// A floating-point parameter of this deploy, or `default` (an integer in config is accepted too).
pub fn get_float(name: &str, default: f64) -> f64 {
    match runtime::param(name) {
        Some(ParamValue::Float(f)) => f,
        Some(ParamValue::Integer(n)) => n as f64,
        _ => default,
    }
}

/// A text parameter of this deploy, or `default`.
pub fn get_text(name: &str, default: &str) -> String {
    match runtime::param(name) {
        Some(ParamValue::Text(s)) => s,
        _ => default.into(),
    }
}

/// A duration parameter of this deploy in milliseconds, or `default_ms`.
pub fn get_duration_ms(name: &str, default_ms: u64) -> u64 {
    match runtime::param(name) {
        Some(ParamValue::DurationMs(ms)) => ms,
        _ => default_ms,
    }
}

/// A list-of-integers parameter of this deploy, or `default`.
pub fn get_integers(name: &str, default: &[i64]) -> Vec<i64> {
    match runtime::param(name) {
        Some(ParamValue::Integers(v)) => v,
        _ => default.to_vec(),
    }
}
