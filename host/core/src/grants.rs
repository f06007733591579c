//! Capability grants: which operations a strategy may call and which machines it may change.
//!
//! The sandbox already gives a strategy no files, sockets or environment; grants narrow what it may do
//! *through the contract*, so an operator can run a strategy they do not fully trust with, say, no
//! `machines.destroy`, or only on the `web` process group in two regions. A refused call is not a trap:
//! it is the contract's `denied` error, which the strategy can handle like any other, and it goes into
//! the event log (and so the journal) like every call.
//!
//! Reading is never restricted (a strategy must see the fleet to plan); the `runtime.*` calls (log,
//! phase, clock, parameters, sleep, promotion gates) and `metrics.judge` (arithmetic on the strategy's
//! own numbers) touch nothing and are always granted. Metrics queries (`metrics.*`) reach a server
//! outside the fleet with the operator's token, so an `allow` list must name them. Scopes
//! (process groups, regions) apply to the calls that change a machine; a clone is judged by its source.

use crate::error::{ErrorKind, OpError};
use crate::events::HostCall;
use std::collections::BTreeSet;

/// Every operation a grant can name: the contract's calls that reach the platform.
pub const OPERATIONS: &[&str] = &[
    "machines.list",
    "machines.get",
    "machines.clone-from",
    "machines.update",
    "machines.start",
    "machines.stop",
    "machines.destroy",
    "machines.wait-state",
    "machines.set-metadata",
    "health.wait-healthy",
    "health.checks",
    "traffic.capabilities",
    "traffic.cordon",
    "traffic.uncordon",
    "traffic.connections",
    "traffic.set-weights",
    "traffic.weights",
    "traffic.stats",
    "metrics.query",
    "metrics.query-range",
];

/// What a strategy may do. The default grants everything (built-ins and a user's own strategy run
/// with the same rights unless the config says otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Operations it may call (names from [`OPERATIONS`]); `None`: all of them.
    pub operations: Option<BTreeSet<&'static str>>,
    /// Process groups whose machines it may change; `None`: all.
    pub process_groups: Option<BTreeSet<String>>,
    /// Regions whose machines it may change; `None`: all.
    pub regions: Option<BTreeSet<String>>,
}

impl Grants {
    /// Grants from config lists: `allow` (default: every operation) less `deny`. Each entry is an
    /// operation name or a family (`machines.*`); `Err` names the entry that matches nothing.
    pub fn from_lists(
        allow: Option<&[String]>,
        deny: &[String],
        process_groups: Option<Vec<String>>,
        regions: Option<Vec<String>>,
    ) -> Result<Self, String> {
        let mut operations: BTreeSet<&'static str> = match allow {
            None => OPERATIONS.iter().copied().collect(),
            Some(allow) => {
                let mut set = BTreeSet::new();
                for pattern in allow {
                    set.extend(matching(pattern)?);
                }
                set
            }
        };
        for pattern in deny {
            for op in matching(pattern)? {
                operations.remove(op);
            }
        }
        let all = operations.len() == OPERATIONS.len();
        Ok(Self {
            operations: (!all).then_some(operations),
            process_groups: process_groups.map(|g| g.into_iter().collect()),
            regions: regions.map(|r| r.into_iter().collect()),
        })
    }

    /// Whether these grants restrict anything.
    pub fn is_unrestricted(&self) -> bool {
        self.operations.is_none() && self.process_groups.is_none() && self.regions.is_none()
    }

    /// Whether machines need their group and region looked up before a change.
    pub fn has_scope(&self) -> bool {
        self.process_groups.is_some() || self.regions.is_some()
    }

    /// The refusal of `call` as a whole, if its operation is not granted.
    pub fn refuse_operation(&self, call: &HostCall) -> Option<OpError> {
        // A pipeline is judged step by step, as each machine reaches a step (see `refuse_step`): like a
        // batch call's refusal, a withheld step is `denied` for each machine, and what comes before it
        // goes ahead.
        if matches!(call, HostCall::Pipeline { .. }) {
            return None;
        }
        self.refuse_named(call.operation())
    }

    /// The refusal of one pipeline step, if its operation is not granted.
    pub fn refuse_step(&self, step: &crate::pipeline::Step) -> Option<OpError> {
        self.refuse_named(step.operation())
    }

    fn refuse_named(&self, op: &str) -> Option<OpError> {
        let ops = self.operations.as_ref()?;
        if op.starts_with("runtime.") || op == "metrics.judge" || ops.contains(op) {
            return None;
        }
        Some(OpError::new(
            ErrorKind::Denied,
            format!(
                "`{op}` is not granted to this strategy by the sandbox policy ([[cutover.sandbox]] \
                 allow/deny in the app's config)"
            ),
        ))
    }

    /// The refusal of a change to machine `id` in `group` and `region`, if it is out of scope.
    pub fn refuse_machine(&self, id: &str, group: &str, region: &str) -> Option<OpError> {
        let out = |allowed: &Option<BTreeSet<String>>, value: &str| {
            allowed.as_ref().is_some_and(|set| !set.contains(value))
        };
        let (what, value, set) = if out(&self.process_groups, group) {
            ("process group", group, &self.process_groups)
        } else if out(&self.regions, region) {
            ("region", region, &self.regions)
        } else {
            return None;
        };
        let granted: Vec<&str> = set.iter().flatten().map(String::as_str).collect();
        Some(OpError::new(
            ErrorKind::Denied,
            format!(
                "machine {id} is in {what} `{value}`, outside what the sandbox policy lets this strategy \
                 change ({})",
                granted.join(", ")
            ),
        ))
    }
}

/// The operations `pattern` names: one operation, or a family (`traffic.*`).
fn matching(pattern: &str) -> Result<Vec<&'static str>, String> {
    let found: Vec<&'static str> = match pattern.strip_suffix(".*") {
        Some(family) => {
            OPERATIONS.iter().copied().filter(|op| op.split('.').next() == Some(family)).collect()
        }
        None => OPERATIONS.iter().copied().filter(|op| *op == pattern).collect(),
    };
    if found.is_empty() {
        return Err(format!(
            "`{pattern}` is no operation; expected one of {} or a family such as `machines.*`",
            OPERATIONS.join(", ")
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Release;

    #[test]
    fn allow_less_deny_with_families() {
        let g = Grants::from_lists(
            Some(&["machines.*".into(), "health.*".into()]),
            &["machines.destroy".into()],
            None,
            None,
        )
        .unwrap();
        let destroy = HostCall::Destroy { ids: vec!["m1".into()] };
        let update = HostCall::Update { ids: vec![], target: Release { version: 2, image: "x".into() } };
        let cordon = HostCall::Cordon { ids: vec![] };
        assert_eq!(g.refuse_operation(&destroy).unwrap().kind, ErrorKind::Denied);
        assert!(g.refuse_operation(&update).is_none());
        assert!(g.refuse_operation(&cordon).unwrap().message.contains("`traffic.cordon`"));
        assert!(g.refuse_operation(&HostCall::Now).is_none(), "runtime calls are always granted");
        let query = HostCall::MetricsQuery { promql: "up".into(), time_ms: None };
        assert!(g.refuse_operation(&query).unwrap().message.contains("`metrics.query`"));
        let judge = HostCall::Judge { canary: vec![], baseline: vec![], options: Default::default() };
        assert!(g.refuse_operation(&judge).is_none(), "the judge touches nothing");
        let metrics = Grants::from_lists(Some(&["metrics.*".into()]), &[], None, None).unwrap();
        assert!(metrics.refuse_operation(&query).is_none());
    }

    #[test]
    fn a_pipeline_is_granted_step_by_step() {
        use crate::pipeline::{PipelineOptions, Step};
        let pipeline = |steps: Vec<Step>| HostCall::Pipeline {
            ids: vec!["m1".into()],
            steps,
            options: PipelineOptions::default(),
        };
        let roll = pipeline(vec![
            Step::Cordon,
            Step::Update { target: Release { version: 2, image: "x".into() } },
            Step::WaitHealthy { timeout_ms: 1 },
            Step::Uncordon,
        ]);
        let no_destroy = Grants::from_lists(None, &["machines.destroy".into()], None, None).unwrap();
        assert!(no_destroy.refuse_operation(&roll).is_none(), "judged step by step, not whole");
        assert!(no_destroy.refuse_step(&Step::Cordon).is_none());
        let e = no_destroy.refuse_step(&Step::Destroy).unwrap();
        assert!(e.kind == ErrorKind::Denied && e.message.contains("`machines.destroy`"), "{e}");
        let no_traffic = Grants::from_lists(Some(&["machines.*".into()]), &[], None, None).unwrap();
        assert!(no_traffic.refuse_step(&Step::Cordon).unwrap().message.contains("`traffic.cordon`"));
        let drain = Step::WaitDrained { poll_ms: 1, timeout_ms: 1 };
        assert!(no_traffic.refuse_step(&drain).unwrap().message.contains("`traffic.connections`"));
    }

    #[test]
    fn everything_allowed_is_unrestricted() {
        assert!(Grants::from_lists(None, &[], None, None).unwrap().is_unrestricted());
        let all = Grants::from_lists(
            Some(&["machines.*".into(), "health.*".into(), "traffic.*".into(), "metrics.*".into()]),
            &[],
            None,
            None,
        );
        assert!(all.unwrap().is_unrestricted());
    }

    #[test]
    fn an_unknown_operation_is_named() {
        let e = Grants::from_lists(Some(&["machines.nuke".into()]), &[], None, None).unwrap_err();
        assert!(e.contains("`machines.nuke` is no operation") && e.contains("machines.destroy"), "{e}");
        assert!(Grants::from_lists(None, &["dns.*".into()], None, None).is_err());
    }

    #[test]
    fn scope_names_the_group_or_region() {
        let g = Grants::from_lists(None, &[], Some(vec!["web".into()]), Some(vec!["ams".into()])).unwrap();
        assert!(g.refuse_machine("m1", "web", "ams").is_none());
        let e = g.refuse_machine("m1", "worker", "ams").unwrap();
        assert!(e.message.contains("process group `worker`") && e.message.contains("(web)"), "{e}");
        assert!(g.refuse_machine("m1", "web", "sin").unwrap().message.contains("region `sin`"));
    }

    #[test]
    fn operation_names_match_the_event_log() {
        for call in [
            HostCall::List,
            HostCall::Connections { ids: vec![] },
            HostCall::WaitHealthy { ids: vec![], timeout_ms: 1 },
            HostCall::SetWeights { weights: vec![] },
        ] {
            let json = serde_json::to_value(&call).unwrap();
            assert_eq!(json["call"], call.operation(), "{call:?}");
            assert!(OPERATIONS.contains(&call.operation()));
        }
    }
}
