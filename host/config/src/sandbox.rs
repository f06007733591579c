//! `[[cutover.sandbox]]`: limits and grants for particular strategies. A team may run a strategy it
//! did not write; a policy names that strategy and narrows what it may call and use, while the
//! strategies it trusts keep `[cutover.limits]` and every right.

use crate::error::ConfigError;
use crate::raw::{RawLimits, RawSandbox};
use crate::strategy::StrategyRef;
use cutover_core::{Grants, Limits};
use std::path::Path;

/// One `[[cutover.sandbox]]` entry: how a strategy is confined.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxPolicy {
    /// The strategy it applies to (as `[deploy] strategy` names it); `None`: every strategy.
    pub strategy: Option<StrategyRef>,
    /// `[cutover.limits]` with this entry's own limits on top.
    pub limits: Limits,
    /// What the strategy may call, and on which process groups and regions (`allow`, `deny`,
    /// `process_groups`, `regions`).
    pub grants: Grants,
}

/// The limits and grants of the first policy naming `strategy` (or naming none), else `limits` and
/// the strategy's default grants ([`default_grants`]). A file path matches the same file by another path, so `./s.wasm` names `s.wasm`.
pub(crate) fn policy_for(
    policies: &[SandboxPolicy],
    limits: Limits,
    strategy: &StrategyRef,
) -> (Limits, Grants) {
    let same = |a: &StrategyRef| match (a, strategy) {
        (StrategyRef::File(x), StrategyRef::File(y)) => {
            x == y || matches!((x.canonicalize(), y.canonicalize()), (Ok(x), Ok(y)) if x == y)
        }
        (a, b) => a == b,
    };
    policies
        .iter()
        .find(|p| p.strategy.as_ref().is_none_or(same))
        .map(|p| (p.limits, p.grants.clone()))
        .unwrap_or_else(|| (limits, default_grants(strategy)))
}

/// The built-in strategies that query metrics (contract 0.2's `metrics.query` and `query-range`).
/// Queries reach a server outside the fleet with the operator's token, so the other built-ins are not
/// granted them: least privilege, and a built-in that starts querying must be added here on purpose.
pub const BUILTINS_USING_METRICS: &[&str] = &["canary"];

/// The grants of a strategy no `[[cutover.sandbox]]` entry names: everything, except `metrics.*` for a
/// built-in that does not use them ([`BUILTINS_USING_METRICS`]). A user's own strategy keeps every
/// grant, as before: its author, not this list, knows what it calls.
fn default_grants(strategy: &StrategyRef) -> Grants {
    match strategy {
        StrategyRef::BuiltIn(name) if !BUILTINS_USING_METRICS.contains(&name.as_str()) => {
            Grants::from_lists(None, &["metrics.*".into()], None, None)
                .expect("`metrics.*` names the metrics operations")
        }
        _ => Grants::default(),
    }
}

/// The policies of `entries` (read from `src`; strategy paths resolved against `base`), each with
/// `limits` under its own.
pub(crate) fn policies(
    entries: Vec<RawSandbox>,
    limits: Limits,
    src: &Path,
    base: &Path,
) -> Result<Vec<SandboxPolicy>, ConfigError> {
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let key = format!("cutover.sandbox[{i}]");
        let grants =
            Grants::from_lists(entry.allow.as_deref(), &entry.deny, entry.process_groups, entry.regions)
                .map_err(|message| ConfigError::Other {
                    path: src.into(),
                    message: format!("`{key}`: {message}"),
                })?;
        out.push(SandboxPolicy {
            strategy: entry.strategy.map(|s| StrategyRef::parse(&s, base)),
            limits: apply_limits(limits, entry.limits, &key, src)?,
            grants,
        });
    }
    Ok(out)
}

/// `limits` with the ones a `[cutover.limits]`-shaped table (at `key`) sets.
pub(crate) fn apply_limits(
    mut limits: Limits,
    l: RawLimits,
    key: &str,
    src: &Path,
) -> Result<Limits, ConfigError> {
    if let Some(mb) = l.memory_mb {
        if mb == 0 || mb > 4096 {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: format!("{key}.memory_mb"),
                value: mb.to_string(),
                expected: "between 1 and 4096 (MiB)".into(),
            });
        }
        limits.memory_bytes = mb << 20;
    }
    if let Some(d) = l.cpu_budget {
        limits.cpu_budget = d.0;
    }
    if let Some(d) = l.deadline {
        limits.deadline = d.0;
    }
    if let Some(n) = l.host_calls {
        if n == 0 {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: format!("{key}.host_calls"),
                value: n.to_string(),
                expected: "at least 1 (host calls per deploy)".into(),
            });
        }
        limits.host_calls = n;
    }
    if let Some(mb) = l.journal_mb {
        if mb == 0 || mb > 1 << 20 {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: format!("{key}.journal_mb"),
                value: mb.to_string(),
                expected: "between 1 and 1048576 (MiB journaled per deploy)".into(),
            });
        }
        limits.journal_bytes = mb << 20;
    }
    // Zero is a policy too: a strategy that may only change machines in place, never create one.
    if let Some(n) = l.new_machines {
        limits.new_machines = Some(n);
    }
    if let Some(d) = l.compile_timeout {
        if d.0.is_zero() {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: format!("{key}.compile_timeout"),
                value: "0s".into(),
                expected: "a duration above zero, such as \"120s\" (time to compile one component)".into(),
            });
        }
        limits.compile_timeout = d.0;
    }
    Ok(limits)
}
