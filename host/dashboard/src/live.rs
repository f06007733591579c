//! What the page shows, read from the journal alone: the app's releases, and for the latest one its
//! phases, machines per release, traffic weights and the manual gate it waits at.
//!
//! The journal is the one record every runner writes (SQLite beside the app or the team's PostgreSQL),
//! so the dashboard needs no connection to the deploy's process or the platform: it polls the journal
//! and rebuilds the picture from the events, the way `cutover resume` rebuilds a strategy's view.

use cutover_core::events::{Event, EventKind, HostCall, HostReply};
use cutover_journal::{Journal, JournalError, ReleaseRecord, ReleaseStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the page shows at one moment; sent whole on every change (it is small).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The app.
    pub app: String,
    /// Where the journal is (a file, or a URL without its password).
    pub journal: String,
    /// Every release, newest first.
    pub releases: Vec<ReleaseRecord>,
    /// The latest release's deploy as its events tell it; `None` before the first deploy.
    pub latest: Option<Progress>,
}

/// One deploy, as its events tell it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The release's number in the journal.
    pub release_id: i64,
    /// `running`, `succeeded`, `failed`, `interrupted`.
    pub status: String,
    /// The phases, in order (the last is the current one while it runs).
    pub phases: Vec<Phase>,
    /// Machines on each release now, as (version, count), ascending by version.
    pub machines: Vec<(u64, usize)>,
    /// The traffic split last set, as (version, percent); empty: by machine count.
    pub weights: Vec<(u64, u8)>,
    /// The manual gate the deploy waits at, if any.
    pub waiting_gate: Option<String>,
    /// The last lines of its log.
    pub log: Vec<String>,
    /// How many events it has recorded.
    pub events: usize,
}

/// A named phase and when it began (host-clock milliseconds since the deploy started).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// As the strategy named it.
    pub name: String,
    /// When it began.
    pub at_ms: u64,
}

/// How many log lines the page keeps.
const LOG_LINES: usize = 12;

/// The reply a pipeline's expanded batch calls are read with: each names only machines that got
/// through its step.
static DONE: HostReply = HostReply::Batch(Vec::new());

/// Read the app's state from the journal (blocking: both backends are synchronous clients).
pub fn snapshot(journal: &Journal, app: &str) -> Result<Snapshot, JournalError> {
    let mut releases = journal.releases(app)?;
    releases.reverse();
    let latest = match releases.first() {
        Some(r) => Some(progress(r, &journal.events(r.id)?)),
        None => None,
    };
    Ok(Snapshot { app: app.to_string(), journal: journal.location().to_string(), releases, latest })
}

/// Rebuild one deploy's progress from its events: the machines from the last full listing, moved by
/// every clone, update and destroy since; the weights as last set.
pub fn progress(release: &ReleaseRecord, events: &[Event]) -> Progress {
    let mut fleet: BTreeMap<String, u64> = BTreeMap::new();
    let mut phases = Vec::new();
    let mut weights = Vec::new();
    let mut log = Vec::new();
    for e in events {
        let EventKind::HostCall { call, reply, .. } = &e.kind else {
            if let EventKind::DeployFinished { error: Some(error), .. } = &e.kind {
                log.push(format!("failed: {error}"));
            }
            continue;
        };
        // A pipeline is read as the batch calls it stands for, each machine as far as it got.
        let expanded;
        let calls: Vec<(&HostCall, &HostReply)> = match (call, reply) {
            (HostCall::Pipeline { ids, steps, .. }, HostReply::Pipeline(outcome)) => {
                expanded = cutover_core::pipeline::as_batch_calls(ids, steps, outcome);
                expanded.iter().map(|c| (c, &DONE)).collect()
            }
            _ => vec![(call, reply)],
        };
        for (call, reply) in calls {
            match (call, reply) {
                (HostCall::List, HostReply::Machines(ms)) => {
                    fleet = ms.iter().map(|m| (m.id.clone(), m.release.version)).collect();
                }
                (HostCall::Get { .. }, HostReply::Machine(m)) => {
                    fleet.insert(m.id.clone(), m.release.version);
                }
                (HostCall::CloneFrom { target, .. }, HostReply::Cloned(made)) => {
                    for id in made.iter().flatten() {
                        fleet.insert(id.clone(), target.version);
                    }
                }
                (HostCall::Update { ids, target }, HostReply::Batch(failed)) => {
                    for id in ids.iter().filter(|id| !failed.iter().any(|(f, _)| f == *id)) {
                        fleet.insert(id.clone(), target.version);
                    }
                }
                (HostCall::Destroy { ids, .. }, HostReply::Batch(failed)) => {
                    for id in ids.iter().filter(|id| !failed.iter().any(|(f, _)| f == *id)) {
                        fleet.remove(id);
                    }
                }
                (HostCall::SetWeights { weights: w }, HostReply::Done) => {
                    weights = w.iter().map(|w| (w.version, w.percent)).collect();
                }
                (HostCall::Phase { name }, _) => phases.push(Phase { name: name.clone(), at_ms: e.at_ms }),
                (HostCall::Log { message, .. }, _) => log.push(message.clone()),
                _ => {}
            }
        }
    }
    let mut machines: BTreeMap<u64, usize> = BTreeMap::new();
    for v in fleet.values() {
        *machines.entry(*v).or_default() += 1;
    }
    let skip = log.len().saturating_sub(LOG_LINES);
    let running = release.status == ReleaseStatus::Running;
    Progress {
        release_id: release.id,
        status: release.status.as_str().to_string(),
        phases,
        machines: machines.into_iter().collect(),
        weights,
        // A gate is waited at only while the deploy runs; an interrupted one waits for nothing.
        waiting_gate: release.waiting_gate.clone().filter(|_| running),
        log: log.split_off(skip),
        events: events.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::platform::ReleaseWeight;
    use cutover_core::{Machine, Release};

    fn event(seq: u64, call: HostCall, reply: HostReply) -> Event {
        Event { seq, at_ms: seq * 10, kind: EventKind::HostCall { call, reply, took_ms: 0 } }
    }

    fn machine(id: &str, version: u64) -> Machine {
        Machine {
            id: id.into(),
            name: id.into(),
            region: "local".into(),
            process_group: "app".into(),
            state: cutover_core::MachineState::Started,
            release: Release { version, image: format!("img:v{version}") },
            cordoned: false,
            checks: vec![],
            volumes: vec![],
            metadata: vec![],
        }
    }

    #[test]
    fn machines_and_weights_follow_the_calls() {
        let v2 = Release { version: 2, image: "img:v2".into() };
        let events = vec![
            event(
                0,
                HostCall::List,
                HostReply::Machines(vec![machine("a", 1), machine("b", 1), machine("c", 1)]),
            ),
            event(1, HostCall::Phase { name: "canary 10%".into() }, HostReply::Done),
            event(
                2,
                HostCall::CloneFrom { sources: vec!["a".into()], target: v2.clone(), routable: true },
                HostReply::Cloned(vec![Ok("d".into())]),
            ),
            event(
                3,
                HostCall::SetWeights {
                    weights: vec![
                        ReleaseWeight { version: 1, percent: 90 },
                        ReleaseWeight { version: 2, percent: 10 },
                    ],
                },
                HostReply::Done,
            ),
            event(
                4,
                HostCall::Update { ids: vec!["b".into(), "c".into()], target: v2 },
                HostReply::Batch(vec![(
                    "c".into(),
                    cutover_core::OpError::new(cutover_core::ErrorKind::Platform, "no"),
                )]),
            ),
            event(5, HostCall::Destroy { ids: vec!["a".into()] }, HostReply::Batch(vec![])),
        ];
        let mut r = record();
        r.waiting_gate = Some("step-10".into());
        let p = progress(&r, &events);
        // a destroyed; b updated; c's update failed (still v1); d cloned.
        assert_eq!(p.machines, vec![(1, 1), (2, 2)]);
        assert_eq!(p.weights, vec![(1, 90), (2, 10)]);
        assert_eq!(p.phases, vec![Phase { name: "canary 10%".into(), at_ms: 10 }]);
        assert_eq!(p.waiting_gate.as_deref(), Some("step-10"));
        assert_eq!(p.events, 6);
        // Once it no longer runs, no gate is waited at.
        r.status = ReleaseStatus::Interrupted;
        assert_eq!(progress(&r, &events).waiting_gate, None);
    }

    fn record() -> ReleaseRecord {
        ReleaseRecord {
            id: 7,
            app: "app".into(),
            kind: cutover_journal::ReleaseKind::Deploy,
            target: Release { version: 2, image: "img:v2".into() },
            previous: Some(Release { version: 1, image: "img:v1".into() }),
            strategy: "canary".into(),
            strategy_hash: "h".into(),
            params: serde_json::json!({}),
            platform: "local".into(),
            status: ReleaseStatus::Running,
            error: None,
            started_at_ms: 0,
            duration_ms: None,
            pid: 1,
            host: None,
            ci_job: None,
            heartbeat_at_ms: None,
            waiting_gate: None,
            leftovers: vec![],
        }
    }
}
