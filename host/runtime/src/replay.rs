//! Replaying a journaled run into a fresh instance of its strategy (`cutover resume`).
//!
//! A strategy sees the world only through host calls, and the sandbox gives it no clock, randomness or
//! I/O the host does not supply, so given the same answers it makes the same calls. Feeding a fresh
//! instance the answers the journal holds therefore drives it to exactly where the killed run was,
//! without touching the platform. Each call the fresh instance makes is checked against the journal:
//! the first that differs stops the resume before anything is changed.
//!
//! The journal may end with an [`EventKind::Intent`] and no answer: a change that was under way when
//! the process died, which may have happened in full, in part or not at all. That call is handed back
//! as [`Step::Reconcile`] so the dispatcher can compare it with the platform's actual state and finish
//! it (see `Dispatcher::reconcile`); every call after it runs live.
//!
//! `cutover rollback` after a crash replays the same way, then aborts: the strategy's first call that
//! can fail after the journal is used up fails (as if the platform had refused it), and so does every
//! later call that would move a machine onto the deploy's target release, so the strategy's own failure
//! path undoes what the deploy did (destroy green, take the canary out, roll touched machines back),
//! exactly as it would had the platform failed at that point. Calls that undo are let through.

use cutover_core::Release;
use cutover_core::events::{Event, EventKind, HostCall, HostReply, LogLevel};
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Prefix of the log lines the host itself writes into a strategy's log (dropped-line notes), which a
/// replayed strategy does not repeat.
pub const HOST_NOTE: &str = "[cutover] ";

/// The calls of an interrupted run, in order, waiting to be replayed.
pub struct Replay {
    state: Mutex<State>,
    /// Every machine id the journal names: a machine on the target release that is not among them was
    /// created by the change under way when the process died.
    known: HashSet<String>,
}

struct State {
    queue: VecDeque<Entry>,
    replayed: u64,
    abort: Option<Abort>,
}

/// An abort being delivered.
struct Abort {
    why: String,
    /// The release the aborted deploy was moving to: no machine may be moved onto it any more.
    target: Release,
    /// Whether the first call that can fail has been failed yet.
    delivered: bool,
}

/// One journaled call.
#[derive(Debug, Clone)]
enum Entry {
    Answered {
        seq: u64,
        call: HostCall,
        reply: HostReply,
    },
    /// Recorded as an intent, never answered: the process died while the platform worked on it.
    InFlight {
        seq: u64,
        call: HostCall,
    },
}

impl Entry {
    fn call(&self) -> &HostCall {
        match self {
            Self::Answered { call, .. } | Self::InFlight { call, .. } => call,
        }
    }

    fn seq(&self) -> u64 {
        match self {
            Self::Answered { seq, .. } | Self::InFlight { seq, .. } => *seq,
        }
    }
}

/// What to do with a call of the replayed strategy.
#[derive(Debug)]
pub enum Step {
    /// Give the strategy the journaled answer; nothing reaches the platform.
    Answer(HostReply),
    /// The change that was under way when the process died: reconcile it with the platform.
    Reconcile,
    /// The journal is used up: run the call live.
    Live,
    /// The journal is used up and the run is being aborted: fail this call with the reason.
    Abort(String),
    /// The strategy made another call than the journal holds: stop, nothing was changed.
    Diverged(ReplayDiverged),
}

/// The replayed strategy did not repeat the journaled run.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the strategy did not repeat its journaled calls: at event #{seq} the journal has `{journaled}`, \
     and the strategy now calls `{called}` (is it deterministic, and is its configuration unchanged?)"
)]
pub struct ReplayDiverged {
    /// The journaled event the strategy strayed at.
    pub seq: u64,
    /// The call the journal holds there.
    pub journaled: String,
    /// The call the strategy made instead.
    pub called: String,
}

impl Replay {
    /// The calls in a release's journaled events (in `seq` order).
    pub fn from_events(events: &[Event]) -> Self {
        let mut queue = VecDeque::new();
        let mut known = HashSet::new();
        let mut pending: Option<(u64, HostCall)> = None;
        for e in events {
            match &e.kind {
                EventKind::Intent { call } => {
                    note_ids(&mut known, call, None);
                    pending = Some((e.seq, call.clone()));
                }
                EventKind::HostCall { call, reply, .. } => {
                    note_ids(&mut known, call, Some(reply));
                    if pending.as_ref().is_some_and(|(_, c)| c == call) {
                        pending = None;
                    }
                    queue.push_back(Entry::Answered { seq: e.seq, call: call.clone(), reply: reply.clone() });
                }
                _ => {}
            }
        }
        if let Some((seq, call)) = pending {
            queue.push_back(Entry::InFlight { seq, call });
        }
        Self { state: Mutex::new(State { queue, replayed: 0, abort: None }), known }
    }

    /// Once the journal is used up, fail the strategy's next call that can fail, and every call after
    /// it that would move a machine onto `target`, with `why`.
    pub fn aborting(self, why: String, target: Release) -> Self {
        self.lock().abort = Some(Abort { why, target, delivered: false });
        self
    }

    /// Calls still to replay (including one under way).
    pub fn remaining(&self) -> usize {
        self.lock().queue.len()
    }

    /// Calls answered from the journal so far.
    pub fn replayed(&self) -> u64 {
        self.lock().replayed
    }

    /// The change under way when the process died, if the journal ends with one.
    pub fn in_flight(&self) -> Option<HostCall> {
        match self.lock().queue.back() {
            Some(Entry::InFlight { call, .. }) => Some(call.clone()),
            _ => None,
        }
    }

    /// Whether the journal names machine `id` anywhere (a call, a reply).
    pub fn knows(&self, id: &str) -> bool {
        self.known.contains(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to do with the strategy's next call.
    pub fn next(&self, call: &HostCall) -> Step {
        let mut st = self.lock();
        loop {
            let Some(front) = st.queue.front() else {
                let Some(abort) = st.abort.as_mut() else { return Step::Live };
                if (!abort.delivered && can_fail(call)) || advances(call, &abort.target) {
                    abort.delivered = true;
                    return Step::Abort(abort.why.clone());
                }
                return Step::Live;
            };
            let journaled = front.call();
            if journaled == call {
                let entry = st.queue.pop_front().expect("front exists");
                st.replayed += 1;
                return match entry {
                    Entry::Answered { reply, .. } => Step::Answer(reply),
                    Entry::InFlight { .. } => Step::Reconcile,
                };
            }
            // The host's own notes are not the strategy's calls.
            if is_host_note(journaled) {
                st.queue.pop_front();
                continue;
            }
            // A log line the original run dropped over the log budget left no record; budgets are on
            // the host clock, which a replay does not reproduce. Lines change nothing, so this is safe.
            if matches!(call, HostCall::Log { .. }) {
                return Step::Answer(HostReply::Done);
            }
            return Step::Diverged(ReplayDiverged {
                seq: front.seq(),
                journaled: describe(journaled),
                called: describe(call),
            });
        }
    }
}

/// Whether an abort may be delivered through this call: its answer can carry an error the strategy
/// acts on, and failing it helps undo. A destroy is not failed: it is how a strategy cleans up, and a
/// deploy past its last change should be left to finish rather than leave what it meant to remove.
fn can_fail(call: &HostCall) -> bool {
    // A pipeline that destroys is a clean-up too.
    if let HostCall::Pipeline { steps, .. } = call {
        return !steps.iter().any(|s| matches!(s, cutover_core::pipeline::Step::Destroy));
    }
    !matches!(
        call,
        HostCall::Destroy { .. }
            | HostCall::Log { .. }
            | HostCall::Phase { .. }
            | HostCall::Progress { .. }
            | HostCall::Now
            | HostCall::Sleep { .. }
            | HostCall::Param { .. }
            | HostCall::Capabilities
    )
}

/// Whether a call would put a machine on `target` (a new one, or an update).
fn advances(call: &HostCall, target: &Release) -> bool {
    match call {
        HostCall::Update { target: t, .. } | HostCall::CloneFrom { target: t, .. } => t == target,
        HostCall::Pipeline { steps, .. } => cutover_core::pipeline::update_target(steps) == Some(target),
        _ => false,
    }
}

fn is_host_note(call: &HostCall) -> bool {
    matches!(call, HostCall::Log { level: LogLevel::Warn, message } if message.starts_with(HOST_NOTE))
}

/// A call as one short line: its operation and, for batch calls, its machines.
pub fn describe(call: &HostCall) -> String {
    match call.machine_ids() {
        Some(ids) if ids.len() <= 4 => format!("{} [{}]", call.operation(), ids.join(", ")),
        Some(ids) => format!("{} [{}, … {} machines]", call.operation(), ids[..3].join(", "), ids.len()),
        None => call.operation().to_string(),
    }
}

fn note_ids(known: &mut HashSet<String>, call: &HostCall, reply: Option<&HostReply>) {
    if let Some(ids) = call.machine_ids() {
        known.extend(ids.iter().cloned());
    }
    match call {
        HostCall::Get { id } | HostCall::SetMetadata { id, .. } | HostCall::Checks { id } => {
            known.insert(id.clone());
        }
        _ => {}
    }
    match reply {
        Some(HostReply::Machines(ms)) => known.extend(ms.iter().map(|m| m.id.clone())),
        Some(HostReply::Machine(m)) => {
            known.insert(m.id.clone());
        }
        Some(HostReply::Cloned(results)) => known.extend(results.iter().filter_map(|r| r.clone().ok())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event { seq, at_ms: 0, kind }
    }

    fn stop(ids: &[&str]) -> HostCall {
        HostCall::Stop {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            signal: "SIGINT".into(),
            timeout_ms: 5,
        }
    }

    #[test]
    fn answers_in_order_then_reconciles_the_change_under_way_then_goes_live() {
        let events = vec![
            ev(
                1,
                EventKind::HostCall { call: HostCall::List, reply: HostReply::Machines(vec![]), took_ms: 1 },
            ),
            ev(2, EventKind::Intent { call: stop(&["a"]) }),
            ev(3, EventKind::HostCall { call: stop(&["a"]), reply: HostReply::Batch(vec![]), took_ms: 1 }),
            ev(4, EventKind::Intent { call: stop(&["b"]) }),
        ];
        let r = Replay::from_events(&events);
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.in_flight(), Some(stop(&["b"])));
        assert!(r.knows("a") && r.knows("b") && !r.knows("c"));
        assert!(matches!(r.next(&HostCall::List), Step::Answer(HostReply::Machines(_))));
        // A log line the original run dropped is answered without consuming anything.
        let log = HostCall::Log { level: LogLevel::Info, message: "x".into() };
        assert!(matches!(r.next(&log), Step::Answer(HostReply::Done)));
        assert!(matches!(r.next(&stop(&["a"])), Step::Answer(HostReply::Batch(_))));
        assert!(matches!(r.next(&stop(&["b"])), Step::Reconcile));
        assert!(matches!(r.next(&stop(&["c"])), Step::Live));
        assert_eq!(r.replayed(), 3);
    }

    #[test]
    fn the_drivers_traffic_readings_are_not_replayed() {
        let reading = |seq| {
            ev(seq, EventKind::TrafficSampled { version: 2, window_ms: 1_000, stats: Default::default() })
        };
        let events = vec![
            reading(1),
            ev(2, EventKind::Intent { call: stop(&["a"]) }),
            reading(3),
            ev(4, EventKind::HostCall { call: stop(&["a"]), reply: HostReply::Batch(vec![]), took_ms: 1 }),
            reading(5),
        ];
        let r = Replay::from_events(&events);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.in_flight(), None, "the intent was answered, readings between notwithstanding");
        assert!(matches!(r.next(&stop(&["a"])), Step::Answer(HostReply::Batch(_))));
        assert!(matches!(r.next(&HostCall::List), Step::Live));
    }

    #[test]
    fn an_abort_fails_the_first_call_after_the_journal_that_can_fail() {
        let v2 = Release { version: 2, image: "img:v2".into() };
        let v1 = Release { version: 1, image: "img:v1".into() };
        let r = Replay::from_events(&[]).aborting("rolling back".into(), v2.clone());
        assert!(matches!(r.next(&HostCall::Sleep { ms: 5 }), Step::Live));
        assert!(matches!(r.next(&stop(&["a"])), Step::Abort(why) if why == "rolling back"));
        assert!(matches!(r.next(&stop(&["a"])), Step::Live), "failed once");
        // Moving machines onto the aborted release stays refused; moving them back does not.
        let update = |target: &Release| HostCall::Update { ids: vec!["a".into()], target: target.clone() };
        assert!(matches!(r.next(&update(&v2)), Step::Abort(_)));
        assert!(matches!(r.next(&update(&v1)), Step::Live));
    }

    #[test]
    fn another_call_than_the_journal_holds_is_a_divergence() {
        let events = vec![ev(
            5,
            EventKind::HostCall { call: stop(&["a"]), reply: HostReply::Batch(vec![]), took_ms: 1 },
        )];
        let r = Replay::from_events(&events);
        let Step::Diverged(d) = r.next(&HostCall::Destroy { ids: vec!["a".into()] }) else {
            panic!("expected a divergence")
        };
        assert_eq!(d.seq, 5);
        let msg = d.to_string();
        assert!(msg.contains("`machines.stop [a]`") && msg.contains("`machines.destroy [a]`"), "{msg}");
    }
}
