//! Strategy parameters. A strategy declares its parameters in `describe()`; `[cutover.params]` is
//! checked against that declaration before the deploy starts, so a typo or a value of the wrong kind
//! is a config error naming the key, not a surprise halfway through a rollout.

use crate::config::Config;
use crate::error::ConfigError;
use cutover_core::contract::{MaxUnavailable, ParamKind, ParamSpec, ParamValue};
use cutover_core::duration;
use std::collections::BTreeMap;

impl Config {
    /// Check `[cutover.params]` against a strategy's declared parameters and fill in defaults.
    ///
    /// Unknown parameters become warnings; a value of the wrong kind, or a required parameter that is
    /// missing, is an error naming the key.
    pub fn strategy_params(
        &self,
        specs: &[ParamSpec],
        strategy: &str,
    ) -> Result<(BTreeMap<String, ParamValue>, Vec<String>), ConfigError> {
        let src = &self.cutover_source;
        let mut values = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, raw) in &self.cutover.params {
            let Some(spec) = specs.iter().find(|s| &s.name == name) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                warnings.push(format!(
                    "{}: `cutover.params.{name}`: strategy {strategy} has no such parameter (ignored; it has: {})",
                    src.display(),
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ));
                continue;
            };
            let value = param_value(spec.kind, raw).ok_or_else(|| ConfigError::Invalid {
                path: src.clone(),
                key: format!("cutover.params.{name}"),
                value: raw.to_string(),
                expected: spec.kind.expected().into(),
            })?;
            values.insert(name.clone(), value);
        }
        for spec in specs {
            if values.contains_key(&spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    values.insert(spec.name.clone(), d.clone());
                }
                None => {
                    return Err(ConfigError::Other {
                        path: src.clone(),
                        message: format!(
                            "strategy {strategy} requires `cutover.params.{}` ({}): {}",
                            spec.name,
                            spec.kind.expected(),
                            spec.summary
                        ),
                    });
                }
            }
        }
        Ok((values, warnings))
    }
}

/// `max_unavailable`: an integer ≥ 1 is a count; a number in (0, 1) a fraction; 1.0 means one machine.
pub fn parse_max_unavailable(v: &toml::Value) -> Option<MaxUnavailable> {
    match v {
        toml::Value::Integer(n) if *n >= 1 => u32::try_from(*n).ok().map(MaxUnavailable::Count),
        toml::Value::Float(f) if *f > 0.0 && *f < 1.0 => Some(MaxUnavailable::Fraction(*f)),
        toml::Value::Float(f) if *f >= 1.0 && f.fract() == 0.0 && *f <= u32::MAX as f64 => {
            Some(MaxUnavailable::Count(*f as u32))
        }
        _ => None,
    }
}

/// Convert a TOML value to a parameter of `kind`, if it has that kind (as `[cutover.params]` is read;
/// `cutover verify --scenario` reads a scenario file's `[verify] params` with it too).
pub fn param_value(kind: ParamKind, v: &toml::Value) -> Option<ParamValue> {
    use toml::Value as V;
    Some(match (kind, v) {
        (ParamKind::Boolean, V::Boolean(b)) => ParamValue::Boolean(*b),
        (ParamKind::Integer, V::Integer(i)) => ParamValue::Integer(*i),
        (ParamKind::Float, V::Float(f)) => ParamValue::Float(*f),
        (ParamKind::Float, V::Integer(i)) => ParamValue::Float(*i as f64),
        (ParamKind::Text, V::String(s)) => ParamValue::Text(s.clone()),
        (ParamKind::Duration, V::String(s)) => {
            ParamValue::DurationMs(duration::parse(s).ok()?.as_millis() as u64)
        }
        (ParamKind::Duration, V::Integer(ms)) if *ms >= 0 => ParamValue::DurationMs(*ms as u64),
        (ParamKind::Integers, V::Array(items)) => {
            ParamValue::Integers(items.iter().map(|i| i.as_integer()).collect::<Option<Vec<_>>>()?)
        }
        (ParamKind::CountOrFraction, v) => match parse_max_unavailable(v)? {
            MaxUnavailable::Count(n) => ParamValue::Integer(i64::from(n)),
            MaxUnavailable::Fraction(f) => ParamValue::Float(f),
        },
        _ => return None,
    })
}
