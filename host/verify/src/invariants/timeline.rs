//! The invariants judged along the way, at every change the simulator recorded: `capacity`,
//! `replacement-first`, `drain` and `weights`. Each names the moment it broke and the host call under
//! way then, since that call is where the strategy's author has to look.

use super::calls::{call_naming, describe_call, last_change_before};
use super::judgement::{Verdict, Violation, fail, na};
use super::run::{Observed, Setup};
use cutover_core::events::{EventKind, HostCall};
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) fn capacity(setup: &Setup, seen: &Observed, gave_up: bool) -> Verdict {
    if setup.allow_downtime {
        return na("the strategy may take every machine out of service (--allow-downtime)");
    }
    let crashed_group = setup
        .faults
        .crash
        .as_ref()
        .and_then(|(id, _)| setup.fleet.iter().find(|m| &m.id == id).map(|m| m.process_group.clone()));
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &setup.fleet {
        *sizes.entry(m.process_group.as_str()).or_default() += 1;
    }
    let floor = |group: &str| -> usize {
        let baseline = seen.availability.group_baseline.get(group).copied().unwrap_or(0);
        let size = sizes.get(group).copied().unwrap_or(0);
        let crash = usize::from(crashed_group.as_deref() == Some(group));
        baseline.saturating_sub(setup.max_unavailable.allowed(size) + crash)
    };
    for (at, groups) in &seen.availability.groups {
        for (group, &serving) in groups {
            let floor = floor(group);
            if serving < floor {
                let baseline = seen.availability.group_baseline.get(group).copied().unwrap_or(0);
                return fail(
                    Violation::new(format!(
                        "process group `{group}` had {serving} of {baseline} machine(s) serving; \
                         max_unavailable {} allows no fewer than {floor}",
                        setup.max_unavailable
                    ))
                    .at(*at)
                    .call(last_change_before(seen.events, *at)),
                );
            }
        }
    }
    if gave_up {
        // Stopping on a transient error must not strand more capacity than a step may take out.
        for (group, baseline) in &seen.availability.group_baseline {
            let serving = seen.end.iter().filter(|m| &m.process_group == group && m.is_serving()).count();
            if serving < floor(group) {
                return fail(Violation::new(format!(
                    "the strategy gave up with {serving} of {baseline} machine(s) of `{group}` serving"
                )));
            }
        }
    }
    Verdict::Pass
}

pub(super) fn replacement_first(setup: &Setup, seen: &Observed) -> Verdict {
    let mut destroyed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut any = false;
    for r in &seen.availability.removals {
        if r.version != setup.previous.version {
            continue;
        }
        any = true;
        let gone = destroyed.entry(r.group.as_str()).or_default();
        *gone += 1;
        let passed = r.passing.get(&setup.target.version).copied().unwrap_or(0);
        if passed < *gone {
            return fail(
                Violation::new(format!(
                    "{} (v{}, process group `{}`) was destroyed while {passed} machine(s) of v{} in its group \
                     had passed their checks: blue was destroyed before green passed",
                    r.id, r.version, r.group, setup.target.version
                ))
                .at(r.at_ms)
                .machines([r.id.as_str()])
                .call(call_naming(seen.events, &r.id, r.at_ms)),
            );
        }
    }
    if any { Verdict::Pass } else { na("no machine of the previous release was destroyed") }
}

pub(super) fn drain(setup: &Setup, seen: &Observed) -> Verdict {
    let Some(limit) = setup.drain_timeout else {
        return na("the strategy has no drain_timeout parameter");
    };
    let limit_ms = limit.as_millis() as u64;
    for c in seen.cuts {
        if c.cordoned_ms.is_none_or(|ms| ms < limit_ms) {
            return fail(
                Violation::new(format!(
                    "{} was stopped or destroyed with {} open connection(s) after draining {} (drain_timeout {})",
                    c.id,
                    c.open,
                    c.cordoned_ms.map_or("not at all: it was never cordoned".to_string(), |ms| {
                        cutover_core::duration::display(Duration::from_millis(ms))
                    }),
                    cutover_core::duration::display(limit)
                ))
                .at(c.at_ms)
                .machines([c.id.as_str()])
                .call(call_naming(seen.events, &c.id, c.at_ms)),
            );
        }
    }
    Verdict::Pass
}

pub(super) fn weights(setup: &Setup, seen: &Observed) -> Verdict {
    // (start, end, weight of the new release) of every set-weights call; an empty list clears them.
    let calls: Vec<(u64, u64, Option<u8>, u64)> = seen
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::SetWeights { weights }, took_ms, .. } => {
                let share = (!weights.is_empty()).then(|| {
                    weights.iter().find(|w| w.version == setup.target.version).map_or(0, |w| w.percent)
                });
                Some((e.at_ms.saturating_sub(*took_ms), e.at_ms, share, e.seq))
            }
            _ => None,
        })
        .collect();
    if calls.is_empty() {
        return na("the strategy set no traffic weights");
    }
    for (at, shares) in &seen.availability.traffic {
        let share = |v: u64| shares.iter().find(|(r, _)| *r == v).map(|(_, p)| *p);
        let (Some(new), Some(_)) = (share(setup.target.version), share(setup.previous.version)) else {
            continue; // one release serves alone: no split can hold it to a weight
        };
        // The weight in force: the last call done by now, or one in flight (it may just have landed).
        let done = calls.iter().rfind(|c| c.1 <= *at);
        let in_flight = calls.iter().filter(|c| c.0 <= *at && c.1 > *at);
        let mut allowed: Option<(u8, u64)> = None;
        let mut unweighted = false;
        for &(_, _, w, seq) in done.into_iter().chain(in_flight) {
            match w {
                Some(p) => {
                    allowed = Some(allowed.map_or((p, seq), |(a, s)| if p > a { (p, seq) } else { (a, s) }))
                }
                None => unweighted = true,
            }
        }
        if unweighted {
            continue;
        }
        if let Some((p, seq)) = allowed
            && new > f64::from(p) + 1e-9
        {
            return fail(
                Violation::new(format!(
                    "v{} had {new:.1}% of new requests while the weights the strategy set gave it {p}%",
                    setup.target.version
                ))
                .at(*at)
                .call(describe_call(seen.events, seq)),
            );
        }
    }
    Verdict::Pass
}
