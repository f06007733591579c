//! How a violation names the host call behind it: its `seq` in the deploy's event log and a short
//! description, so a report points at the exact call.

use super::judgement::{Verdict, Violation};
use cutover_core::events::{Event, EventKind, HostCall, HostReply};
use cutover_runtime::dispatch::creations;

/// Short description of a host call: `machines.destroy of 3 machine(s)`.
fn summary(call: &HostCall) -> String {
    let name = call.operation().to_string();
    match call.machine_ids() {
        Some(ids) => format!("{name} of {} machine(s)", ids.len()),
        None => name,
    }
}

pub(super) fn describe_call(events: &[Event], seq: u64) -> Option<(u64, String)> {
    events.iter().find(|e| e.seq == seq).and_then(|e| match &e.kind {
        EventKind::HostCall { call, .. } => Some((e.seq, summary(call))),
        _ => None,
    })
}

/// The call naming `id` that was under way at `at_ms` (started by then, ended at or after it).
pub(super) fn call_naming(events: &[Event], id: &str, at_ms: u64) -> Option<(u64, String)> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::HostCall { call, took_ms, .. }
            if e.at_ms >= at_ms
                && e.at_ms.saturating_sub(*took_ms) <= at_ms
                && call.machine_ids().is_some_and(|ids| ids.iter().any(|i| i == id)) =>
        {
            Some((e.seq, summary(call)))
        }
        _ => None,
    })
}

/// The last call that changes the fleet under way at or before `at_ms`.
pub(super) fn last_change_before(events: &[Event], at_ms: u64) -> Option<(u64, String)> {
    events
        .iter()
        .filter(|e| e.at_ms.saturating_sub(took(e)) <= at_ms)
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call, .. } if call.mutates() => Some((e.seq, summary(call))),
            _ => None,
        })
        .next_back()
}

fn took(e: &Event) -> u64 {
    match &e.kind {
        EventKind::HostCall { took_ms, .. } => *took_ms,
        _ => 0,
    }
}

/// The sandbox's verdict on a run that returned: broken when the strategy asked for machines past the
/// deploy's blast radius (the host denied them, so the fleet stayed inside it, but a deploy would hit
/// the same wall).
pub(super) fn blast_radius(events: &[Event]) -> Verdict {
    let mut denied = 0usize;
    let mut first = None;
    for e in events {
        if let EventKind::HostCall { call: HostCall::CloneFrom { .. }, reply, .. } = &e.kind {
            let refusals = match reply {
                HostReply::Cloned(results) => {
                    results.iter().filter(|r| r.as_ref().is_err_and(creations::is_refusal)).count()
                }
                HostReply::Failed(error) => usize::from(creations::is_refusal(error)),
                _ => 0,
            };
            if refusals > 0 && first.is_none() {
                first = Some(e);
            }
            denied += refusals;
        }
    }
    let Some(first) = first else { return Verdict::Pass };
    Verdict::Fail(
        Violation::new(format!(
            "the strategy asked for {denied} machine(s) past the deploy's blast radius and was denied them \
             (a deploy may create as many machines as the app had when it started, plus one per process \
             group; `[cutover.limits] new_machines` sets another bound)"
        ))
        .at(first.at_ms)
        .call(describe_call(events, first.seq)),
    )
}
