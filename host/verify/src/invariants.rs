//! The promises any deploy strategy must keep, judged from what the simulator saw.
//!
//! One implementation serves `cutover verify` and the property tests (`tests/support/invariants.rs`),
//! so the invariants a strategy author's CI checks are the ones the built-ins are tested against.
//! Each check reads only what every strategy produces — the fleet before and after, the simulator's
//! record of capacity, removals and cut connections, and the host calls made — never a strategy's
//! name, so it judges a user's strategy exactly as a built-in. See the parent module for why each
//! invariant is universal.

use cutover_core::contract::MaxUnavailable;
use cutover_core::events::{Event, EventKind, HostCall};
use cutover_core::{ErrorKind, Machine, MachineState, OpError, Release};
use cutover_sim::{Availability, Cut};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One promise a strategy keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// The strategy returns a verdict: no trap, no sandbox limit, no endless run.
    Sandbox,
    /// Success only when the new release can serve; failure only for a cause the scenario injected.
    Verdict,
    /// The fleet ends on one release: the new one on success, the previous one on failure.
    OneRelease,
    /// Every machine serves at the end (but one that crashed after the deploy last touched it).
    AllServing,
    /// As many machines per process group and region at the end as at the start: none lost, none
    /// left over.
    NothingLost,
    /// Serving machines of each process group never fall below the starting count minus
    /// `max_unavailable` (and a crashed machine).
    Capacity,
    /// A machine of the previous release is destroyed only once a new-release machine of its group
    /// passed its checks to replace it.
    ReplacementFirst,
    /// A machine is stopped or destroyed with open connections only after draining for
    /// `drain_timeout` (for strategies with that parameter).
    Drain,
    /// While both releases serve, the new one gets no more traffic than the weight the strategy set.
    Weights,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 9] = [
        Self::Sandbox,
        Self::Verdict,
        Self::OneRelease,
        Self::AllServing,
        Self::NothingLost,
        Self::Capacity,
        Self::ReplacementFirst,
        Self::Drain,
        Self::Weights,
    ];

    /// The invariant's short name, as reports and `--json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Verdict => "verdict",
            Self::OneRelease => "one-release",
            Self::AllServing => "all-serving",
            Self::NothingLost => "nothing-lost",
            Self::Capacity => "capacity",
            Self::ReplacementFirst => "replacement-first",
            Self::Drain => "drain",
            Self::Weights => "weights",
        }
    }

    /// One sentence saying what the invariant promises.
    pub fn promise(self) -> &'static str {
        match self {
            Self::Sandbox => "the strategy returns a verdict without trapping or hitting a sandbox limit",
            Self::Verdict => {
                "the deploy fails when the new release cannot pass its checks in time, and only for an \
                 injected cause"
            }
            Self::OneRelease => {
                "the fleet ends on one release: the new one on success, the previous one on failure"
            }
            Self::AllServing => "every machine is started, uncordoned and passing at the end",
            Self::NothingLost => "as many machines per process group and region at the end as at the start",
            Self::Capacity => {
                "serving machines of each process group never drop below the start minus max_unavailable"
            }
            Self::ReplacementFirst => {
                "no machine of the previous release is destroyed before its replacement passed its checks"
            }
            Self::Drain => "no machine is cut off with open connections before drain_timeout",
            Self::Weights => {
                "the new release never gets more traffic than the weight set for it while both serve"
            }
        }
    }
}

/// A broken promise: what, when, and which machines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub message: String,
    /// Virtual ms since the deploy started, when the breach has a moment.
    pub at_ms: Option<u64>,
    /// The host call that broke it (its `seq` in the deploy's event log and what it was), if one did.
    pub call: Option<(u64, String)>,
    /// The machines involved (at most a handful are named).
    pub machines: Vec<String>,
}

impl Violation {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), at_ms: None, call: None, machines: vec![] }
    }
    fn at(mut self, at_ms: u64) -> Self {
        self.at_ms = Some(at_ms);
        self
    }
    fn machines<'a>(mut self, ids: impl IntoIterator<Item = &'a str>) -> Self {
        self.machines = ids.into_iter().take(5).map(str::to_string).collect();
        self
    }
    fn call(mut self, call: Option<(u64, String)>) -> Self {
        self.call = call;
        self
    }
}

/// How one invariant fared in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(Violation),
    /// It cannot be judged in this run; the reason says why.
    NotApplicable {
        reason: String,
    },
}

/// The fault a scenario injects, as far as judging a run needs to know it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of API calls failing with a transient error.
    pub api_error_rate: f64,
    /// The new release boots but never passes its checks.
    pub unhealthy: bool,
    /// The new release boots slower than `wait_timeout`.
    pub slow: bool,
    /// A machine of the starting fleet crashes, by id, this long into the deploy.
    pub crash: Option<(String, Duration)>,
}

/// What the run was asked to do.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The starting fleet.
    pub fleet: Vec<Machine>,
    pub previous: Release,
    pub target: Release,
    pub max_unavailable: MaxUnavailable,
    pub faults: Faults,
    /// The strategy's `drain_timeout`, when it has one.
    pub drain_timeout: Option<Duration>,
    /// The strategy does not promise to keep the app up (like `immediate`): capacity is not checked,
    /// and it may report success for a release that cannot serve.
    pub allow_downtime: bool,
    /// The strategy keeps the release it replaces as stopped machines for a rollback that is a switch
    /// (like bluegreen's `retain_blue`): machines of that release that are not started at the end are
    /// standbys, left out of `one-release`, `all-serving` and `nothing-lost`. A running leftover still
    /// counts.
    pub allow_standby: bool,
}

/// A machine kept stopped on the release the fleet is not on, when the strategy says it keeps them.
fn standby(setup: &Setup, m: &Machine, verdict: &Result<(), OpError>) -> bool {
    let other = if verdict.is_ok() { &setup.previous } else { &setup.target };
    setup.allow_standby
        && m.release.version == other.version
        && matches!(m.state, MachineState::Stopped | MachineState::Suspended | MachineState::Created)
}

/// What the run did.
pub struct Observed<'a> {
    /// The sandbox's error as text, or the strategy's verdict.
    pub result: &'a Result<Result<(), OpError>, String>,
    /// Host calls the strategy made (at least every call that changes the fleet).
    pub events: &'a [Event],
    pub availability: &'a Availability,
    pub cuts: &'a [Cut],
    /// The fleet once it settled after the deploy.
    pub end: &'a [Machine],
}

/// Judge one run against every invariant, in [`Invariant::ALL`] order.
pub fn check(setup: &Setup, seen: &Observed) -> Vec<(Invariant, Verdict)> {
    let verdict = match seen.result {
        Err(sandbox) => {
            let v = Verdict::Fail(Violation::new(format!("the sandbox stopped the strategy: {sandbox}")));
            // Nothing else can be judged of a run the sandbox ended: the fleet is where it stopped.
            return Invariant::ALL
                .iter()
                .map(|&i| match i {
                    Invariant::Sandbox => (i, v.clone()),
                    _ => (i, na("the sandbox stopped the run")),
                })
                .collect();
        }
        Ok(v) => v,
    };
    let gave_up = gave_up(setup, verdict);
    Invariant::ALL
        .iter()
        .map(|&i| {
            let v = match i {
                Invariant::Sandbox => Verdict::Pass,
                Invariant::Verdict => check_verdict(setup, verdict),
                Invariant::OneRelease => one_release(setup, seen, verdict, gave_up),
                Invariant::AllServing => all_serving(setup, seen, verdict, gave_up),
                Invariant::NothingLost => nothing_lost(setup, seen, verdict, gave_up),
                Invariant::Capacity => capacity(setup, seen, gave_up),
                Invariant::ReplacementFirst => replacement_first(setup, seen),
                Invariant::Drain => drain(setup, seen),
                Invariant::Weights => weights(setup, seen),
            };
            (i, v)
        })
        .collect()
}

fn na(reason: impl Into<String>) -> Verdict {
    Verdict::NotApplicable { reason: reason.into() }
}

fn fail(v: Violation) -> Verdict {
    Verdict::Fail(v)
}

/// A failure the scenario explains without a fault of the strategy: transient errors that outlasted
/// its retries, or the crash of a machine it was waiting on (its error names the machine). The
/// strategy then stops where it is, and its error says what is left; the fleet may be mixed.
fn gave_up(setup: &Setup, verdict: &Result<(), OpError>) -> bool {
    let Err(e) = verdict else { return false };
    let transient =
        setup.faults.api_error_rate > 0.0 && matches!(e.kind, ErrorKind::Platform | ErrorKind::Timeout);
    transient || crash_named(setup, e)
}

fn crash_named(setup: &Setup, e: &OpError) -> bool {
    setup.faults.crash.as_ref().is_some_and(|(id, _)| e.message.contains(id.as_str()))
}

/// Whether the deploy must fail: the new release cannot pass its checks within `wait_timeout`.
fn must_fail(setup: &Setup) -> bool {
    setup.faults.unhealthy || setup.faults.slow
}

fn check_verdict(setup: &Setup, verdict: &Result<(), OpError>) -> Verdict {
    match verdict {
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

fn one_release(setup: &Setup, seen: &Observed, verdict: &Result<(), OpError>, gave_up: bool) -> Verdict {
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

fn all_serving(setup: &Setup, seen: &Observed, verdict: &Result<(), OpError>, gave_up: bool) -> Verdict {
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

fn nothing_lost(setup: &Setup, seen: &Observed, verdict: &Result<(), OpError>, gave_up: bool) -> Verdict {
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

fn capacity(setup: &Setup, seen: &Observed, gave_up: bool) -> Verdict {
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

fn replacement_first(setup: &Setup, seen: &Observed) -> Verdict {
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

fn drain(setup: &Setup, seen: &Observed) -> Verdict {
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

fn weights(setup: &Setup, seen: &Observed) -> Verdict {
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

/// Short description of a host call: `machines.destroy of 3 machine(s)`.
fn summary(call: &HostCall) -> String {
    let name = call.operation().to_string();
    match call.machine_ids() {
        Some(ids) => format!("{name} of {} machine(s)", ids.len()),
        None => name,
    }
}

fn describe_call(events: &[Event], seq: u64) -> Option<(u64, String)> {
    events.iter().find(|e| e.seq == seq).and_then(|e| match &e.kind {
        EventKind::HostCall { call, .. } => Some((e.seq, summary(call))),
        _ => None,
    })
}

/// The call naming `id` that was under way at `at_ms` (started by then, ended at or after it).
fn call_naming(events: &[Event], id: &str, at_ms: u64) -> Option<(u64, String)> {
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
fn last_change_before(events: &[Event], at_ms: u64) -> Option<(u64, String)> {
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
