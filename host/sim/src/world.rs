//! The world: every machine of every app, and how each one's state unfolds on the virtual clock.
//!
//! A machine's future is a *timeline* of pending state changes (stopping → starting → started), each
//! with the instant it is due, and nothing runs when that instant comes: whoever looks at the machine
//! next *settles* it first (applies every entry that is due, and a scheduled crash). So a fleet of
//! 10,000 machines costs no timers of its own, and what a machine does depends only on the seed and
//! what was done to it. Its checks are read off the same clock: the first result arrives a grace
//! period plus a seeded phase after the boot, and fails for a release the scenario calls unhealthy.
//!
//! Everything else in the crate builds on this module: the traffic model and availability tracking
//! read the world's census, the platform handle changes machines, and `persist` saves and restores
//! the state defined here.

use crate::availability::{Availability, Cut};
use crate::draw::{machine_id, unit};
use crate::scenario::Scenario;
use cutover_core::{Check, CheckSpec, CheckStatus, Machine, MachineState, Release, ReleaseWeight};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A simulated platform holding one app and its neighbours.
pub struct SimWorld {
    pub(crate) scenario: Scenario,
    /// The app's checks, as its config declares them: every machine of the world runs them.
    pub(crate) checks: Vec<CheckSpec>,
    /// Virtual time zero: samples, cuts and removals are stamped in ms since.
    pub(crate) origin: Instant,
    /// One lock for the whole world: a change and the capacity sample after it see the same fleet.
    pub(crate) state: Mutex<WorldState>,
    /// Where every change is written as it happens (see [`SimWorld::write_through`]).
    pub(crate) kept: Mutex<Option<Kept>>,
}

/// Everything about the world that changes, behind [`SimWorld`]'s one lock.
pub(crate) struct WorldState {
    pub(crate) machines: BTreeMap<String, SimMachine>,
    /// Ids that existed and were destroyed: destroying them again is not an error.
    pub(crate) destroyed: BTreeMap<String, String>,
    /// Machines created so far, in every app: the next machine's id is drawn from it.
    pub(crate) next_index: u64,
    /// Draw counters for calls not tied to one machine (list, weights, stats), per operation.
    pub(crate) global_ops: BTreeMap<&'static str, u64>,
    /// What availability tracking recorded, once it is on.
    pub(crate) tracking: Option<Availability>,
    /// Traffic split per app, as set by `set_weights` (absent: by machine count).
    pub(crate) weights: BTreeMap<String, Vec<ReleaseWeight>>,
    /// Long-lived connections cut by a stop or destroy.
    pub(crate) cuts: Vec<Cut>,
}

/// One simulated machine: what the API shows of it, plus its pending timeline and the counters that
/// key its draws.
#[derive(Debug, Clone)]
pub(crate) struct SimMachine {
    pub(crate) id: String,
    pub(crate) app: String,
    pub(crate) name: String,
    pub(crate) region: String,
    pub(crate) group: String,
    pub(crate) release: Release,
    pub(crate) state: MachineState,
    /// Future state changes, applied when their time comes.
    pub(crate) timeline: VecDeque<(Instant, MachineState)>,
    /// When the current boot reached `started`: its checks count from here.
    pub(crate) started_at: Option<Instant>,
    pub(crate) cordoned: bool,
    /// When the machine stopped taking new connections; its long-lived ones then end one by one.
    pub(crate) cordoned_at: Option<Instant>,
    /// When traffic weights left the machine's release no share of new connections (see
    /// [`cutover_core::platform::weighted_out`]): like a cordon, its long-lived ones then end one by one.
    pub(crate) unweighted_at: Option<Instant>,
    /// Whether the current boot has taken new connections at some point (started, uncordoned, its
    /// release weighted in): only then does it hold long-lived ones.
    pub(crate) took: bool,
    pub(crate) volumes: Vec<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    /// Whether the machine should be running (false after `stop`).
    pub(crate) desired_running: bool,
    /// A scheduled crash, applied once.
    pub(crate) crash_at: Option<Instant>,
    /// API calls seen, per operation, feeding the seeded draws.
    pub(crate) ops: BTreeMap<String, u64>,
    /// Boots so far, so each boot draws its own boot time and check timing.
    pub(crate) boots: u64,
    /// Stops so far (by `stop` or `update`), so each draws its own stop time.
    pub(crate) stops: u64,
}

impl SimMachine {
    /// Whether new connections reach it now, were it started: uncordoned, its release weighted in.
    pub(crate) fn takes_connections(&self) -> bool {
        !self.cordoned && self.unweighted_at.is_none()
    }

    /// Notes that it takes new connections from now, if it is started and does.
    pub(crate) fn note_taking(&mut self) {
        if self.state == MachineState::Started && self.takes_connections() {
            self.took = true;
        }
    }
}

/// A world written through to disk: where, and the open change log (`persist` writes it).
pub(crate) struct Kept {
    pub(crate) log: std::fs::File,
    pub(crate) path: PathBuf,
}

impl SimWorld {
    /// Build the starting fleet for `app` (plus its neighbour app) from a scenario.
    ///
    /// `default_image` is used when the scenario names no image for the starting release.
    pub fn new(scenario: Scenario, app: &str, default_image: &str, checks: Vec<CheckSpec>) -> Arc<Self> {
        let origin = Instant::now();
        let fleet = &scenario.fleet;
        let release = Release {
            version: fleet.version,
            image: fleet.image.clone().unwrap_or_else(|| default_image.to_string()),
        };
        let mut state = WorldState {
            machines: BTreeMap::new(),
            destroyed: BTreeMap::new(),
            next_index: 0,
            global_ops: BTreeMap::new(),
            tracking: None,
            weights: BTreeMap::new(),
            cuts: Vec::new(),
        };
        let neighbour = format!("{app}-neighbour");
        let plan = (0..fleet.machines)
            .map(|i| (app, i))
            .chain((0..fleet.neighbours).map(|i| (neighbour.as_str(), i)));
        for (owner, i) in plan {
            let region = &fleet.regions[i % fleet.regions.len()];
            let group = &fleet.groups[(i / fleet.regions.len()) % fleet.groups.len()];
            let running = owner != app || i >= fleet.stopped;
            let crash_at = if owner == app {
                scenario.faults.crash.iter().find(|c| c.machine == i).map(|c| origin + c.at.0)
            } else {
                None
            };
            let m = SimMachine {
                id: machine_id(scenario.seed, owner, state.next_index),
                app: owner.to_string(),
                name: format!("{owner}-{group}-{i}"),
                region: region.clone(),
                group: group.clone(),
                release: release.clone(),
                state: if running { MachineState::Started } else { MachineState::Stopped },
                timeline: VecDeque::new(),
                started_at: running.then_some(origin - Duration::from_secs(3600)),
                cordoned: false,
                cordoned_at: None,
                unweighted_at: None,
                took: running,
                volumes: if fleet.volumes && owner == app { vec![format!("data_{i}")] } else { vec![] },
                metadata: BTreeMap::from([
                    ("fly_process_group".to_string(), group.clone()),
                    ("fly_release_version".to_string(), release.version.to_string()),
                ]),
                desired_running: running,
                crash_at,
                ops: BTreeMap::new(),
                boots: 0,
                stops: 0,
            };
            state.next_index += 1;
            state.machines.insert(m.id.clone(), m);
        }
        Arc::new(Self { scenario, checks, origin, state: Mutex::new(state), kept: Mutex::default() })
    }

    /// Every machine of `app` as it is now (for tests and reports).
    pub fn snapshot(&self, app: &str) -> Vec<Machine> {
        let mut st = self.lock();
        let now = Instant::now();
        let ids: Vec<String> = st.machines.values().filter(|m| m.app == app).map(|m| m.id.clone()).collect();
        ids.iter()
            .map(|id| {
                let m = st.machines.get_mut(id).expect("listed above");
                self.settle(m, now);
                self.view(m, now)
            })
            .collect()
    }

    /// The scenario's bound on concurrent operations, if it sets one.
    pub fn concurrency(&self) -> Option<usize> {
        self.scenario.concurrency
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, WorldState> {
        // A panic while holding the lock is a bug in the simulator; the state is still consistent
        // enough to report, so recover rather than poison every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// Serving machines of `app` right now, by process group (every group present, even at zero) and by
    /// release version. One pass without building machine views: capacity is sampled over the whole
    /// fleet after every change, so this is the simulator's hot loop when tracking is on.
    pub(crate) fn census(&self, st: &mut WorldState, app: &str, now: Instant) -> Census {
        let mut groups: Vec<(&str, usize)> = Vec::new();
        let mut versions: BTreeMap<u64, usize> = BTreeMap::new();
        for m in st.machines.values_mut().filter(|m| m.app == app) {
            self.settle(m, now);
            let m: &SimMachine = m;
            let slot = match groups.iter().position(|(g, _)| *g == m.group) {
                Some(i) => i,
                None => {
                    groups.push((m.group.as_str(), 0));
                    groups.len() - 1
                }
            };
            if !m.cordoned && self.passing(m, now) {
                groups[slot].1 += 1;
                *versions.entry(m.release.version).or_default() += 1;
            }
        }
        Census { groups: groups.into_iter().map(|(g, n)| (g.to_string(), n)).collect(), versions }
    }

    /// Apply every timeline entry (and crash) that is due.
    pub(crate) fn settle(&self, m: &mut SimMachine, now: Instant) {
        while let Some(&(at, state)) = m.timeline.front() {
            if at > now {
                break;
            }
            m.timeline.pop_front();
            m.state = state;
            if state == MachineState::Started {
                m.started_at = Some(at);
            }
            m.took = state == MachineState::Started && m.takes_connections();
        }
        if let Some(at) = m.crash_at
            && at <= now
        {
            m.crash_at = None;
            m.timeline.clear();
            m.state = MachineState::Failed;
        }
    }

    /// When the first check result of the current boot arrives.
    pub(crate) fn first_check_at(&self, m: &SimMachine) -> Option<Instant> {
        let started = m.started_at?;
        let spec = self.checks.iter().max_by_key(|c| c.grace_period)?;
        let jitter = unit(self.scenario.seed, &m.id, 1_000_000 + m.boots);
        Some(started + spec.grace_period + spec.interval.mul_f64(jitter))
    }

    /// When a failing check has failed long enough to call the machine unhealthy (three results).
    pub(crate) fn unhealthy_at(&self, m: &SimMachine) -> Option<Instant> {
        let first = self.first_check_at(m)?;
        let interval = self.checks.iter().map(|c| c.interval).max().unwrap_or_default();
        Some(first + interval * 2)
    }

    fn release_is_unhealthy(&self, m: &SimMachine) -> bool {
        self.scenario.faults.unhealthy_images.contains(&m.release.image)
    }

    /// Whether the machine is started and every check passes: what `checks_of` says, without building
    /// the checks (capacity is sampled over the whole fleet after every change).
    pub(crate) fn passing(&self, m: &SimMachine, now: Instant) -> bool {
        m.state == MachineState::Started
            && (self.checks.is_empty()
                || (self.first_check_at(m).is_none_or(|t| now >= t) && !self.release_is_unhealthy(m)))
    }

    pub(crate) fn checks_of(&self, m: &SimMachine, now: Instant) -> Vec<Check> {
        self.checks
            .iter()
            .map(|spec| {
                let (status, output) = if m.state != MachineState::Started {
                    (CheckStatus::Critical, format!("machine is {}", m.state.as_str()))
                } else if self.first_check_at(m).is_some_and(|t| now < t) {
                    (CheckStatus::Warning, "waiting for the first check result".to_string())
                } else if self.release_is_unhealthy(m) {
                    (CheckStatus::Critical, check_failure(spec))
                } else {
                    (CheckStatus::Passing, "200 OK".to_string())
                };
                Check { name: spec.name.clone(), status, output }
            })
            .collect()
    }

    pub(crate) fn view(&self, m: &SimMachine, now: Instant) -> Machine {
        Machine {
            id: m.id.clone(),
            name: m.name.clone(),
            region: m.region.clone(),
            process_group: m.group.clone(),
            state: m.state,
            release: m.release.clone(),
            cordoned: m.cordoned,
            checks: self.checks_of(m, now),
            volumes: m.volumes.clone(),
            metadata: m.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// Timeline for a boot starting at `at`, given the machine's image.
    pub(crate) fn boot_timeline(&self, m: &mut SimMachine, at: Instant) -> Vec<(Instant, MachineState)> {
        m.boots += 1;
        let boot = match self.scenario.faults.slow_images.get(&m.release.image) {
            Some(slow) => slow.0,
            None => self.boot_time(&m.id, m.boots),
        };
        let mut t = vec![(at, MachineState::Starting), (at + boot, MachineState::Started)];
        if self.scenario.faults.crashing_images.contains(&m.release.image) {
            t.push((at + boot + Duration::from_secs(1), MachineState::Failed));
        }
        t
    }

    /// The stop time of a machine's next stop (counted).
    pub(crate) fn next_stop(&self, m: &mut SimMachine) -> Duration {
        m.stops += 1;
        self.stop_time(&m.id, m.stops)
    }

    pub(crate) fn latency(&self, [lo, hi]: [u64; 2], key: &str, n: u64) -> Duration {
        let u = unit(self.scenario.seed, key, n);
        Duration::from_millis(lo + ((hi - lo) as f64 * u) as u64)
    }
}

/// Serving machines by process group and by release version.
pub(crate) struct Census {
    pub(crate) groups: BTreeMap<String, usize>,
    pub(crate) versions: BTreeMap<u64, usize>,
}

fn check_failure(spec: &CheckSpec) -> String {
    match &spec.kind {
        cutover_core::CheckKind::Http { method, path, .. } => {
            format!("{method} {path}: 500 Internal Server Error")
        }
        cutover_core::CheckKind::Tcp => "connection refused".to_string(),
    }
}
