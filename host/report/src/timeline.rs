//! A release's story rebuilt from its events: what each machine was (release, state) and when, the
//! phases, the traffic split over time, the traffic statistics the deploy read, and where it failed.
//!
//! Only the journal is read: every change a strategy made is a `HostCall` event with its answer, so
//! replaying the answers (not the intents: an intent may never have reached the platform) gives the
//! fleet at every moment. A `machines.list` answer is taken as the truth at its time, so a picture
//! stays right even when a call's effect was partial or the platform moved on by itself.

use cutover_core::events::{Event, EventKind, HostCall, HostReply, Outcome};
use cutover_core::platform::{ReleaseWeight, TrafficStats, weighted_out};
use cutover_core::{Machine, MachineState};
use std::collections::{BTreeMap, HashMap};

/// What a machine is doing, as the picture colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LaneState {
    /// Started (or on its way) but taking no traffic yet: being created, started or replaced.
    Starting,
    /// Started and in rotation.
    Serving,
    /// Started but out of rotation (no new connections): cordoned, or its release weighted to 0%.
    Cordoned,
    /// Stopped (or stopping, suspended, failed).
    Stopped,
    /// Gone.
    Destroyed,
}

impl LaneState {
    /// Every state, in the order a legend and a stacked area list them.
    pub const ALL: [LaneState; 5] =
        [Self::Serving, Self::Cordoned, Self::Starting, Self::Stopped, Self::Destroyed];

    /// The word a legend shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Serving => "serving",
            Self::Cordoned => "cordoned",
            Self::Stopped => "stopped",
            Self::Destroyed => "destroyed",
        }
    }
}

/// One stretch of a machine's life in one release and one state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Milliseconds since the deploy started, inclusive.
    pub from_ms: u64,
    /// Milliseconds since the deploy started, exclusive.
    pub to_ms: u64,
    /// The release the machine ran.
    pub version: u64,
    /// What it was doing.
    pub state: LaneState,
}

/// One machine's row of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// The machine's platform id.
    pub id: String,
    /// Its life, in order, without gaps from its first appearance.
    pub segments: Vec<Segment>,
}

/// A named phase of the deploy (`runtime.phase`), from its start to the next one's.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseBand {
    /// The phase's name.
    pub name: String,
    /// When it began.
    pub from_ms: u64,
    /// When the next phase (or the deploy) began (or ended).
    pub to_ms: u64,
}

/// A traffic split at one moment: (release, percent of new connections).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightPoint {
    /// When this split took effect.
    pub at_ms: u64,
    /// Percent per release; by serving machine count when the strategy set no weights.
    pub percent: Vec<(u64, f64)>,
    /// Whether the split was set by the strategy (`traffic.set-weights`) rather than by machine count.
    pub explicit: bool,
}

/// One reading of one release's traffic: the driver's own readings while the strategy ran
/// (`traffic_sampled`), or, for a release it did not read, the strategy's `traffic.stats` answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatPoint {
    /// When it was read.
    pub at_ms: u64,
    /// The release.
    pub version: u64,
    /// Requests per second over the window.
    pub rate: f64,
    /// Share of requests that failed, 0 to 1.
    pub error_rate: f64,
    /// 99th-percentile latency, milliseconds.
    pub p99_ms: f64,
}

impl StatPoint {
    /// The point for `stats` of `version` over `window_ms`, read at `at_ms`.
    fn of(at_ms: u64, version: u64, window_ms: u64, stats: &TrafficStats) -> Self {
        let secs = window_ms.max(1) as f64 / 1000.0;
        let error_rate = if stats.requests == 0 { 0.0 } else { stats.errors as f64 / stats.requests as f64 };
        Self { at_ms, version, rate: stats.requests as f64 / secs, error_rate, p99_ms: stats.p99_ms }
    }
}

/// Where and why a release failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// When the deploy ended.
    pub at_ms: u64,
    /// Why, as the deploy said.
    pub why: String,
    /// Calls that failed on the way: (time, machine or `None` for a whole call, operation, error).
    pub marks: Vec<FailMark>,
}

/// One failed call or machine, where the picture puts a cross.
#[derive(Debug, Clone, PartialEq)]
pub struct FailMark {
    /// When the call ended.
    pub at_ms: u64,
    /// The machine, when one machine failed; `None` for a call that failed as a whole.
    pub machine: Option<String>,
    /// The operation (`machines.update`) and why, as the platform said.
    pub what: String,
}

/// Counts per (release, state) at one moment: what the picture stacks when lanes are too many.
#[derive(Debug, Clone, PartialEq)]
pub struct CountPoint {
    /// When.
    pub at_ms: u64,
    /// Machines per (release, state); destroyed machines are not counted.
    pub counts: BTreeMap<(u64, LaneState), usize>,
}

/// Everything the picture draws.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    /// One lane per machine, in the order they appeared.
    pub lanes: Vec<Lane>,
    /// The phases, in order.
    pub phases: Vec<PhaseBand>,
    /// The traffic split over time.
    pub weights: Vec<WeightPoint>,
    /// Traffic readings, in order.
    pub stats: Vec<StatPoint>,
    /// Fleet counts after every change.
    pub counts: Vec<CountPoint>,
    /// The failure, when the release failed.
    pub failure: Option<Failure>,
    /// Every release a machine ran, ascending.
    pub versions: Vec<u64>,
    /// The deploy's length (its last event, or its end).
    pub end_ms: u64,
}

/// A machine as the replay tracks it.
struct Track {
    lane: usize,
    version: u64,
    phys: Phys,
    cordoned: bool,
    since_ms: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Phys {
    Starting,
    Started,
    Stopped,
    Destroyed,
}

impl Track {
    /// Its state under the traffic split `split` (empty: by machine count).
    fn state(&self, split: &[ReleaseWeight]) -> LaneState {
        match self.phys {
            Phys::Destroyed => LaneState::Destroyed,
            Phys::Stopped => LaneState::Stopped,
            Phys::Starting => LaneState::Starting,
            Phys::Started if self.cordoned || weighted_out(split, self.version) => LaneState::Cordoned,
            Phys::Started => LaneState::Serving,
        }
    }
}

/// The replay: the fleet as it stands, and the timeline it writes.
#[derive(Default)]
struct Replay {
    t: Timeline,
    index: HashMap<String, Track>,
    counts: BTreeMap<(u64, LaneState), usize>,
    weights: Option<Vec<(u64, f64)>>,
    /// The traffic split as last set, for the lanes' states (empty: by machine count).
    split: Vec<ReleaseWeight>,
    counts_dirty: bool,
}

impl Replay {
    /// Move machine `id` to (`version`, `phys`, `cordoned`) at `at`, opening a lane if it is new.
    fn set(&mut self, at: u64, id: &str, f: impl FnOnce(&mut Option<(u64, Phys, bool)>)) {
        let before = self.index.get(id).map(|m| (m.version, m.phys, m.cordoned));
        let mut after = before;
        f(&mut after);
        let Some((version, phys, cordoned)) = after else { return };
        if before == after {
            return;
        }
        match self.index.get_mut(id) {
            Some(m) => {
                let old = m.state(&self.split);
                let old_version = m.version;
                m.version = version;
                m.phys = phys;
                m.cordoned = cordoned;
                let new = m.state(&self.split);
                self.moved(at, id, (old_version, old), (version, new));
            }
            None => {
                let lane = self.t.lanes.len();
                self.t.lanes.push(Lane { id: id.to_string(), segments: Vec::new() });
                let m = Track { lane, version, phys, cordoned, since_ms: at };
                let state = m.state(&self.split);
                self.index.insert(id.to_string(), m);
                self.count(version, state, 1);
            }
        }
    }

    /// Close machine `id`'s segment at `at` when its (release, state) went from `old` to `new`.
    fn moved(&mut self, at: u64, id: &str, old: (u64, LaneState), new: (u64, LaneState)) {
        if old == new {
            return;
        }
        let Some(m) = self.index.get_mut(id) else { return };
        let since = std::mem::replace(&mut m.since_ms, at);
        self.t.lanes[m.lane].segments.push(Segment {
            from_ms: since,
            to_ms: at,
            version: old.0,
            state: old.1,
        });
        self.count(old.0, old.1, -1);
        self.count(new.0, new.1, 1);
    }

    /// New weights at `at`: machines of a release that gains or loses every share change state.
    fn reweigh(&mut self, at: u64, weights: &[ReleaseWeight]) {
        let old = std::mem::replace(&mut self.split, weights.to_vec());
        let changed: Vec<(String, u64, LaneState, LaneState)> = self
            .index
            .iter()
            .map(|(id, m)| (id.clone(), m.version, m.state(&old), m.state(&self.split)))
            .filter(|(_, _, old, new)| old != new)
            .collect();
        for (id, version, old, new) in changed {
            self.moved(at, &id, (version, old), (version, new));
        }
    }

    fn count(&mut self, version: u64, state: LaneState, delta: isize) {
        if state == LaneState::Destroyed {
            return;
        }
        let c = self.counts.entry((version, state)).or_default();
        *c = c.saturating_add_signed(delta);
        if *c == 0 {
            self.counts.remove(&(version, state));
        }
        self.counts_dirty = true;
    }

    /// Take a listed machine as the truth.
    fn listed(&mut self, at: u64, m: &Machine) {
        let phys = match m.state {
            MachineState::Created | MachineState::Starting | MachineState::Replacing => Phys::Starting,
            MachineState::Started => Phys::Started,
            MachineState::Stopping
            | MachineState::Stopped
            | MachineState::Suspended
            | MachineState::Failed => Phys::Stopped,
            MachineState::Destroying | MachineState::Destroyed => Phys::Destroyed,
        };
        let (version, cordoned) = (m.release.version, m.cordoned);
        self.set(at, &m.id, |s| *s = Some((version, phys, cordoned)));
    }

    /// Record the fleet's counts and the traffic split after the events at `at`.
    fn snapshot(&mut self, at: u64) {
        if !self.counts_dirty {
            return;
        }
        self.counts_dirty = false;
        match self.t.counts.last_mut() {
            Some(last) if last.at_ms == at => last.counts = self.counts.clone(),
            _ => self.t.counts.push(CountPoint { at_ms: at, counts: self.counts.clone() }),
        }
        if self.weights.is_none() {
            self.push_weights(at, None);
        }
    }

    /// The split at `at`: `explicit` as set, or by serving machines when `None`.
    fn push_weights(&mut self, at: u64, explicit: Option<Vec<(u64, f64)>>) {
        let percent = match &explicit {
            Some(w) => w.clone(),
            None => {
                let serving: Vec<(u64, usize)> = self
                    .counts
                    .iter()
                    .filter(|((_, s), _)| *s == LaneState::Serving)
                    .map(|((v, _), n)| (*v, *n))
                    .collect();
                let total: usize = serving.iter().map(|(_, n)| n).sum();
                if total == 0 {
                    Vec::new()
                } else {
                    serving.iter().map(|(v, n)| (*v, *n as f64 * 100.0 / total as f64)).collect()
                }
            }
        };
        let point = WeightPoint { at_ms: at, percent, explicit: explicit.is_some() };
        match self.t.weights.last_mut() {
            Some(last) if last.at_ms == at => *last = point,
            Some(last) if last.percent == point.percent && last.explicit == point.explicit => {}
            _ => self.t.weights.push(point),
        }
    }

    fn call(&mut self, end: u64, took: u64, call: &HostCall, reply: &HostReply) {
        // A pipeline is read as the batch calls it stands for, each machine as far as it got.
        if let (HostCall::Pipeline { ids, steps, .. }, HostReply::Pipeline(outcome)) = (call, reply) {
            for f in &outcome.failed {
                let op = steps.get(f.step as usize).map_or("machines.pipeline", |s| s.operation());
                self.mark(end, Some(f.id.clone()), format!("{op}: {}", f.error.message));
            }
            for batch in cutover_core::pipeline::as_batch_calls(ids, steps, outcome) {
                self.call(end, took, &batch, &HostReply::Batch(Vec::new()));
            }
            return;
        }
        let start = end.saturating_sub(took);
        let failed: Vec<&str> = match reply {
            HostReply::Batch(errs) => errs.iter().map(|(id, _)| id.as_str()).collect(),
            _ => Vec::new(),
        };
        if let HostReply::Batch(errs) = reply {
            for (id, e) in errs {
                self.mark(end, Some(id.clone()), format!("{}: {}", call.operation(), e.message));
            }
        }
        if let HostReply::Failed(e) = reply {
            if call.mutates() || matches!(call, HostCall::WaitHealthy { .. } | HostCall::WaitState { .. }) {
                self.mark(end, None, format!("{}: {}", call.operation(), e.message));
            }
            return;
        }
        let ok = |id: &&String| !failed.contains(&id.as_str());
        match (call, reply) {
            (HostCall::List, HostReply::Machines(ms)) => {
                let listed: std::collections::HashSet<&str> = ms.iter().map(|m| m.id.as_str()).collect();
                for m in ms {
                    self.listed(end, m);
                }
                let gone: Vec<String> =
                    self.index.keys().filter(|id| !listed.contains(id.as_str())).cloned().collect();
                for id in gone {
                    self.set(end, &id, |s| {
                        if let Some(s) = s {
                            s.1 = Phys::Destroyed
                        }
                    });
                }
            }
            (HostCall::Get { .. }, HostReply::Machine(m)) => self.listed(end, m),
            (HostCall::CloneFrom { target, routable, .. }, HostReply::Cloned(ids)) => {
                for id in ids.iter().flatten() {
                    let v = target.version;
                    self.set(start, id, |s| *s = Some((v, Phys::Starting, !routable)));
                    self.set(end, id, |s| *s = Some((v, Phys::Started, !routable)));
                }
                for e in ids.iter().filter_map(|r| r.as_ref().err()) {
                    self.mark(end, None, format!("machines.clone-from: {}", e.message));
                }
            }
            (HostCall::Update { ids, target }, _) => {
                for id in ids.iter().filter(ok) {
                    let v = target.version;
                    let was_stopped = self.index.get(id.as_str()).is_some_and(|m| m.phys == Phys::Stopped);
                    self.set(start, id, |s| {
                        if let Some(s) = s {
                            *s = (v, if was_stopped { Phys::Stopped } else { Phys::Starting }, s.2)
                        }
                    });
                    self.set(end, id, |s| {
                        if let Some(s) = s {
                            *s = (v, if was_stopped { Phys::Stopped } else { Phys::Started }, s.2)
                        }
                    });
                }
            }
            (HostCall::Start { ids }, _) => {
                for id in ids.iter().filter(ok) {
                    self.set(start, id, |s| {
                        if let Some(s) = s {
                            s.1 = Phys::Starting
                        }
                    });
                    self.set(end, id, |s| {
                        if let Some(s) = s {
                            s.1 = Phys::Started
                        }
                    });
                }
            }
            (HostCall::Stop { ids, .. }, _) => {
                for id in ids.iter().filter(ok) {
                    self.set(end, id, |s| {
                        if let Some(s) = s {
                            s.1 = Phys::Stopped
                        }
                    });
                }
            }
            (HostCall::Destroy { ids }, _) => {
                for id in ids.iter().filter(ok) {
                    self.set(end, id, |s| {
                        if let Some(s) = s {
                            s.1 = Phys::Destroyed
                        }
                    });
                }
            }
            (HostCall::Cordon { ids }, _) => {
                for id in ids.iter().filter(ok) {
                    self.set(end, id, |s| {
                        if let Some(s) = s {
                            s.2 = true
                        }
                    });
                }
            }
            (HostCall::Uncordon { ids }, _) => {
                for id in ids.iter().filter(ok) {
                    self.set(end, id, |s| {
                        if let Some(s) = s {
                            s.2 = false
                        }
                    });
                }
            }
            (HostCall::SetWeights { weights }, HostReply::Done) => {
                let w: Vec<(u64, f64)> = weights.iter().map(|w| (w.version, w.percent as f64)).collect();
                self.reweigh(end, weights);
                self.weights = (!w.is_empty()).then(|| w.clone());
                self.push_weights(end, self.weights.clone());
            }
            (HostCall::Stats { version, window_ms }, HostReply::Stats(s)) => {
                self.t.stats.push(StatPoint::of(end, *version, *window_ms, s))
            }
            (HostCall::Phase { name }, _) => {
                if let Some(last) = self.t.phases.last_mut() {
                    last.to_ms = end;
                }
                self.t.phases.push(PhaseBand { name: name.clone(), from_ms: end, to_ms: end });
            }
            _ => {}
        }
    }

    fn mark(&mut self, at_ms: u64, machine: Option<String>, what: String) {
        let f =
            self.t.failure.get_or_insert_with(|| Failure { at_ms, why: String::new(), marks: Vec::new() });
        f.marks.push(FailMark { at_ms, machine, what });
    }
}

/// Rebuild a release's timeline from its events.
pub fn build(events: &[Event]) -> Timeline {
    let mut r = Replay::default();
    let mut finished = None;
    let mut sampled = Vec::new();
    for e in events {
        r.t.end_ms = r.t.end_ms.max(e.at_ms);
        match &e.kind {
            EventKind::HostCall { call, reply, took_ms } => r.call(e.at_ms, *took_ms, call, reply),
            EventKind::TrafficSampled { version, window_ms, stats } => {
                sampled.push(StatPoint::of(e.at_ms, *version, *window_ms, stats))
            }
            EventKind::DeployFinished { outcome, error, duration_ms, .. } => {
                r.t.end_ms = r.t.end_ms.max(*duration_ms);
                finished = Some((*outcome, error.clone(), e.at_ms.max(*duration_ms)));
            }
            _ => {}
        }
        r.snapshot(e.at_ms);
    }
    // A release the driver read draws the driver's readings alone: each covers one whole second, read
    // at a steady pace, whereas the strategy's answers cover windows of its choosing, and mixed in they
    // would make the line jump between the two.
    r.t.stats.retain(|p| !sampled.iter().any(|s| s.version == p.version));
    r.t.stats.extend(sampled);
    r.t.stats.sort_by_key(|p| p.at_ms);
    let end = r.t.end_ms;
    if let Some(last) = r.t.phases.last_mut() {
        last.to_ms = end;
    }
    // Close every lane at the end.
    let mut tracks: Vec<&Track> = r.index.values().collect();
    tracks.sort_by_key(|m| m.lane);
    for m in tracks {
        r.t.lanes[m.lane].segments.push(Segment {
            from_ms: m.since_ms,
            to_ms: end.max(m.since_ms),
            version: m.version,
            state: m.state(&r.split),
        });
    }
    match finished {
        Some((Outcome::Failed, why, at)) => {
            let f = r.t.failure.get_or_insert_with(|| Failure {
                at_ms: at,
                why: String::new(),
                marks: Vec::new(),
            });
            f.at_ms = at;
            f.why = why.unwrap_or_else(|| "the deploy failed".into());
        }
        // Failed calls on the way to a success are not a failure of the release.
        _ => r.t.failure = None,
    }
    let mut versions: Vec<u64> =
        r.t.lanes.iter().flat_map(|l| l.segments.iter().map(|s| s.version)).collect();
    versions.extend(r.t.weights.iter().flat_map(|w| w.percent.iter().map(|p| p.0)));
    versions.sort_unstable();
    versions.dedup();
    r.t.versions = versions;
    r.t
}
