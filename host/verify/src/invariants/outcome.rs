//! The invariants judged on how the deploy ended: its verdict, and the fleet once it settled
//! (`verdict`, `one-release`, `all-serving`, `nothing-lost`).

use super::judgement::{Verdict, Violation, fail, na};
use super::run::{Observed, Setup, gave_up, must_fail, standby};
use cutover_core::events::{EventKind, HostCall};
use cutover_core::{Machine, MachineState, OpError};
use std::collections::BTreeMap;

pub(super) fn check_verdict(setup: &Setup, verdict: &Result<(), OpError>) -> Verdict {
    match verdict {
        Ok(()) if setup.faults.regression => fail(Violation::new(format!(
            "the deploy reported success although {} regresses on the metrics the scenario describes",
            setup.target.image
        ))),
        Ok(()) if must_fail(setup) && setup.allow_downtime => Verdict::Pass,
        Ok(()) if must_fail(setup) => fail(Violation::new(format!(
            "the deploy reported success although {} never passes its checks within wait_timeout",
            setup.target.image
        ))),
        Ok(()) => Verdict::Pass,
        Err(_) if must_fail(setup) => Verdict::Pass,
        Err(e) if gave_up(setup, verdict) => {
            let _ = e;
            Verdict::Pass
        }
        Err(e) => fail(Violation::new(format!("the deploy failed with no injected cause: {e}"))),
    }
}

pub(super) fn one_release(
    setup: &Setup,
    seen: &Observed,
    verdict: &Result<(), OpError>,
    gave_up: bool,
) -> Verdict {
    if gave_up {
        return na("the strategy gave up on an injected fault; its error says which machines are where");
    }
    let expected = if verdict.is_ok() { &setup.target } else { &setup.previous };
    let wrong: Vec<&Machine> = seen
        .end
        .iter()
        .filter(|m| m.release.version != expected.version && !standby(setup, m, verdict))
        .collect();
    if wrong.is_empty() {
        return Verdict::Pass;
    }
    let mut by: BTreeMap<u64, usize> = BTreeMap::new();
    for m in seen.end {
        *by.entry(m.release.version).or_default() += 1;
    }
    let split = by.iter().map(|(v, n)| format!("{n} on v{v}")).collect::<Vec<_>>().join(", ");
    fail(
        Violation::new(format!(
            "the deploy {} but the fleet ended on {split}: {} machine(s) not on v{}",
            if verdict.is_ok() { "succeeded" } else { "failed" },
            wrong.len(),
            expected.version
        ))
        .machines(wrong.iter().map(|m| m.id.as_str())),
    )
}

pub(super) fn all_serving(
    setup: &Setup,
    seen: &Observed,
    verdict: &Result<(), OpError>,
    gave_up: bool,
) -> Verdict {
    if gave_up {
        return na("the strategy gave up on an injected fault; its error says which machines are where");
    }
    if setup.allow_downtime && verdict.is_ok() && setup.faults.unhealthy {
        return na("the strategy deploys without health gating, and this release never passes");
    }
    let down: Vec<&Machine> = seen
        .end
        .iter()
        .filter(|m| !m.is_serving())
        .filter(|m| !excused_crash(setup, seen, m, verdict) && !standby(setup, m, verdict))
        .collect();
    if down.is_empty() {
        return Verdict::Pass;
    }
    let first = down[0];
    fail(
        Violation::new(format!(
            "{} machine(s) not serving at the end, e.g. {} on v{}: {}{}{}",
            down.len(),
            first.id,
            first.release.version,
            first.state.as_str(),
            if first.cordoned { ", cordoned" } else { "" },
            if first.checks.iter().any(|c| c.status != cutover_core::CheckStatus::Passing) {
                ", checks not passing"
            } else {
                ""
            }
        ))
        .machines(down.iter().map(|m| m.id.as_str())),
    )
}

/// A machine that crashed after the deploy last changed it stays down: nothing restarts it. It stays
/// cordoned only if the deploy stopped at it.
fn excused_crash(setup: &Setup, seen: &Observed, m: &Machine, verdict: &Result<(), OpError>) -> bool {
    let Some((id, at)) = &setup.faults.crash else { return false };
    let crash_ms = at.as_millis() as u64;
    let restarted = seen.events.iter().any(|e| match &e.kind {
        EventKind::HostCall {
            call: HostCall::Update { ids, .. } | HostCall::Start { ids }, took_ms, ..
        } => e.at_ms.saturating_sub(*took_ms) >= crash_ms && ids.contains(id),
        _ => false,
    });
    *id == m.id && m.state == MachineState::Failed && (!m.cordoned || verdict.is_err()) && !restarted
}

/// Machines per (process group, region).
fn shape(fleet: &[Machine]) -> BTreeMap<(&str, &str), usize> {
    let mut by = BTreeMap::new();
    for m in fleet {
        *by.entry((m.process_group.as_str(), m.region.as_str())).or_default() += 1;
    }
    by
}

pub(super) fn nothing_lost(
    setup: &Setup,
    seen: &Observed,
    verdict: &Result<(), OpError>,
    gave_up: bool,
) -> Verdict {
    let before = shape(&setup.fleet);
    let end: Vec<Machine> = seen.end.iter().filter(|m| !standby(setup, m, verdict)).cloned().collect();
    let after = shape(&end);
    let keys: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (b, a) = (before.get(key).copied().unwrap_or(0), after.get(key).copied().unwrap_or(0));
        // A strategy that gave up may leave extra machines (green not yet destroyed), never fewer.
        if a < b || (a > b && !gave_up) {
            let (group, region) = key;
            let starting: std::collections::HashSet<&str> =
                setup.fleet.iter().map(|m| m.id.as_str()).collect();
            let ending: std::collections::HashSet<&str> = seen.end.iter().map(|m| m.id.as_str()).collect();
            let odd: Vec<&str> = if a < b {
                setup
                    .fleet
                    .iter()
                    .filter(|m| {
                        (m.process_group.as_str(), m.region.as_str()) == *key
                            && !ending.contains(m.id.as_str())
                    })
                    .map(|m| m.id.as_str())
                    .collect()
            } else {
                end.iter()
                    .filter(|m| {
                        (m.process_group.as_str(), m.region.as_str()) == *key
                            && !starting.contains(m.id.as_str())
                    })
                    .map(|m| m.id.as_str())
                    .collect()
            };
            return fail(
                Violation::new(format!(
                    "process group `{group}` in {region} had {b} machine(s) before and {a} after: {}",
                    if a < b { "machines lost" } else { "machines left over" }
                ))
                .machines(odd),
            );
        }
    }
    Verdict::Pass
}

/// The strict end state, excused by nothing a strategy could have retried: the fleet on exactly one
/// release (the new one on success, the previous one on failure), every machine serving but those
/// stopped before the deploy (as many stopped, none cordoned), and as many machines per process group
/// and region as at the start. Only a machine the scenario crashed and a declared standby are
/// exceptions. Unlike `one-release`, `all-serving` and `nothing-lost`, transient errors excuse
/// nothing here: every call of a deploy's clean-up (cordon, uncordon, stop, destroy, waits) is
/// idempotent, so a strategy can retry it for as long as its budget allows.
pub(super) fn clean_end(setup: &Setup, seen: &Observed, verdict: &Result<(), OpError>) -> Verdict {
    if setup.allow_downtime && verdict.is_ok() && must_fail(setup) {
        return na("the strategy deploys without health gating, and this release never passes");
    }
    let expected = if verdict.is_ok() { &setup.target } else { &setup.previous };
    let excused = |m: &Machine| excused_crash(setup, seen, m, verdict) || standby(setup, m, verdict);
    let end: Vec<&Machine> = seen.end.iter().filter(|m| !excused(m)).collect();
    let mut problems: Vec<String> = Vec::new();
    let mut odd: Vec<&str> = Vec::new();

    let wrong: Vec<&Machine> =
        end.iter().copied().filter(|m| m.release.version != expected.version).collect();
    if let Some(first) = wrong.first() {
        problems.push(format!(
            "{} machine(s) not on v{} (e.g. {} on v{})",
            wrong.len(),
            expected.version,
            first.id,
            first.release.version
        ));
        odd.extend(wrong.iter().map(|m| m.id.as_str()));
    }
    let resting = |m: &Machine| {
        matches!(m.state, MachineState::Stopped | MachineState::Suspended | MachineState::Created)
    };
    let stopped_before = setup.fleet.iter().filter(|m| resting(m)).count();
    let cordoned_before = setup.fleet.iter().filter(|m| m.cordoned).count();
    let stopped: Vec<&Machine> = end.iter().copied().filter(|m| resting(m)).collect();
    if stopped.len() > stopped_before {
        problems.push(format!("{} machine(s) stopped, {stopped_before} before the deploy", stopped.len()));
        odd.extend(stopped.iter().map(|m| m.id.as_str()));
    }
    let cordoned: Vec<&Machine> = end.iter().copied().filter(|m| m.cordoned).collect();
    if cordoned.len() > cordoned_before {
        problems.push(format!("{} machine(s) cordoned, {cordoned_before} before the deploy", cordoned.len()));
        odd.extend(cordoned.iter().map(|m| m.id.as_str()));
    }
    let down: Vec<&Machine> = end.iter().copied().filter(|m| !resting(m) && !m.is_serving()).collect();
    if let Some(first) = down.first() {
        problems.push(format!(
            "{} running machine(s) not serving (e.g. {}: {}{})",
            down.len(),
            first.id,
            first.state.as_str(),
            if first.cordoned { ", cordoned" } else { "" }
        ));
        odd.extend(down.iter().map(|m| m.id.as_str()));
    }
    let before = shape(&setup.fleet);
    // A crashed machine is still there: only standbys are left out of the count.
    let counted: Vec<Machine> = seen.end.iter().filter(|m| !standby(setup, m, verdict)).cloned().collect();
    let after = shape(&counted);
    if before != after {
        let (b, a) = (setup.fleet.len(), counted.len());
        problems.push(format!(
            "{b} machine(s) before and {a} after, or spread differently over groups and regions"
        ));
        let starting: std::collections::HashSet<&str> = setup.fleet.iter().map(|m| m.id.as_str()).collect();
        if a > b {
            odd.extend(
                seen.end
                    .iter()
                    .filter(|m| !starting.contains(m.id.as_str()) && !standby(setup, m, verdict))
                    .map(|m| m.id.as_str()),
            );
        }
    }
    if problems.is_empty() {
        return Verdict::Pass;
    }
    odd.dedup();
    fail(
        Violation::new(format!(
            "the deploy {} and the fleet did not end clean: {}",
            if verdict.is_ok() { "succeeded" } else { "failed" },
            problems.join("; ")
        ))
        .machines(odd),
    )
}
