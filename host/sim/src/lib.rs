//! The simulator: an in-process fleet on a virtual clock.
//!
//! Time is tokio's clock. The CLI runs the simulator on a current-thread runtime with time paused, so
//! tokio jumps straight to the next timer whenever every task is waiting: a deploy that would take an
//! hour of boots and health checks runs in milliseconds, and the same seed gives the same run.
//!
//! Each machine keeps a *timeline* of future state changes (stopping → starting → started) that is
//! applied lazily whenever the machine is looked at, so 10,000 machines cost no timers of their own.
//! Every random draw (latency, fault) is a pure function of the seed, the machine (or the app, for
//! calls on no machine), the kind of operation and how many of that kind the machine has seen: the
//! second `update` of a machine takes the same time whatever else a strategy did to it, and
//! concurrency does not change the outcome. That is also what lets a lower bound price the operations
//! a strategy's semantics require at the times this run drew for them ([`model`]).

pub mod kept;
pub mod model;
mod persist;
pub mod scenario;

pub use kept::KeptFleet;
pub use persist::SavedWorld;
pub use scenario::Scenario;

use async_trait::async_trait;
use cutover_core::ErrorKind;
use cutover_core::{
    Capabilities, Check, CheckSpec, CheckStatus, Machine, MachineState, OpError, Platform, Release,
    ReleaseWeight, StopSpec, TrafficStats,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A simulated platform holding one app and its neighbours.
pub struct SimWorld {
    scenario: Scenario,
    checks: Vec<CheckSpec>,
    origin: Instant,
    state: Mutex<WorldState>,
    /// Where every change is written as it happens (see [`SimWorld::write_through`]).
    kept: Mutex<Option<persist::Kept>>,
}

struct WorldState {
    machines: BTreeMap<String, SimMachine>,
    /// Ids that existed and were destroyed: destroying them again is not an error.
    destroyed: BTreeMap<String, String>,
    next_index: u64,
    /// Draw counters for calls not tied to one machine (list, weights, stats), per operation.
    global_ops: BTreeMap<&'static str, u64>,
    tracking: Option<Availability>,
    /// Traffic split per app, as set by `set_weights` (absent: by machine count).
    weights: BTreeMap<String, Vec<ReleaseWeight>>,
    /// Long-lived connections cut by a stop or destroy.
    cuts: Vec<Cut>,
}

/// Long-lived connections a stop or destroy cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Virtual ms of the stop or destroy.
    pub at_ms: u64,
    pub id: String,
    /// Connections still open when it happened.
    pub open: u32,
    /// How long the machine had been cordoned (draining) by then; none if it never was.
    pub cordoned_ms: Option<u64>,
}

/// A machine destroyed while tracking was on, and what its process group had passing at that instant
/// (so a verifier can tell whether an old machine went before its replacement was healthy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Virtual ms of the destroy.
    pub at_ms: u64,
    pub id: String,
    pub group: String,
    /// The release version the machine ran.
    pub version: u64,
    /// Machines of the group, other than this one, started and passing every check (cordoned or not),
    /// by release version.
    pub passing: BTreeMap<u64, usize>,
}

/// Serving capacity over time, recorded after every change when tracking is on.
#[derive(Debug, Clone, Default)]
pub struct Availability {
    /// Machines of the tracked app serving when tracking started.
    pub baseline: usize,
    /// (virtual ms, machines serving) after each change.
    pub samples: Vec<(u64, usize)>,
    /// (virtual ms, share of new requests per release version in percent) after each change.
    pub traffic: Vec<(u64, Vec<(u64, f64)>)>,
    /// Machines serving per process group when tracking started.
    pub group_baseline: BTreeMap<String, usize>,
    /// (virtual ms, machines serving per process group) after each change.
    pub groups: Vec<(u64, BTreeMap<String, usize>)>,
    /// Machines destroyed since tracking started.
    pub removals: Vec<Removal>,
    app: String,
}

impl Availability {
    /// The largest shortfall below the baseline at any recorded instant.
    pub fn max_unavailable(&self) -> usize {
        self.samples.iter().map(|&(_, serving)| self.baseline.saturating_sub(serving)).max().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct SimMachine {
    id: String,
    app: String,
    name: String,
    region: String,
    group: String,
    release: Release,
    state: MachineState,
    /// Future state changes, applied when their time comes.
    timeline: VecDeque<(Instant, MachineState)>,
    started_at: Option<Instant>,
    cordoned: bool,
    /// When the machine stopped taking new connections; its long-lived ones then end one by one.
    cordoned_at: Option<Instant>,
    volumes: Vec<String>,
    metadata: BTreeMap<String, String>,
    /// Whether the machine should be running (false after `stop`).
    desired_running: bool,
    /// A scheduled crash, applied once.
    crash_at: Option<Instant>,
    /// API calls seen, per operation, feeding the seeded draws.
    ops: BTreeMap<String, u64>,
    /// Boots so far, so each boot draws its own boot time and check timing.
    boots: u64,
    /// Stops so far (by `stop` or `update`), so each draws its own stop time.
    stops: u64,
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

    /// A platform handle scoped to one app.
    pub fn platform(self: &Arc<Self>, app: &str) -> SimPlatform {
        SimPlatform { app: app.to_string(), world: self.clone(), keep: None }
    }

    /// Start recording serving capacity of `app` after every change.
    pub fn track_availability(&self, app: &str) {
        let mut st = self.lock();
        let now = Instant::now();
        let census = self.census(&mut st, app, now);
        let groups = census.groups;
        let baseline = groups.values().sum();
        let traffic = vec![(0, split(st.weights.get(app), &census.versions))];
        st.tracking = Some(Availability {
            baseline,
            samples: vec![(0, baseline)],
            traffic,
            group_baseline: groups.clone(),
            groups: vec![(0, groups)],
            removals: Vec::new(),
            app: app.to_string(),
        });
    }

    /// Long-lived connections cut by stops and destroys so far: (virtual ms, machine, connections).
    pub fn cut_connections(&self) -> Vec<(u64, String, u32)> {
        self.lock().cuts.iter().map(|c| (c.at_ms, c.id.clone(), c.open)).collect()
    }

    /// Long-lived connections cut by stops and destroys so far, with how long each machine drained.
    pub fn cuts(&self) -> Vec<Cut> {
        self.lock().cuts.clone()
    }

    /// What tracking recorded so far.
    pub fn availability(&self) -> Option<Availability> {
        self.lock().tracking.clone()
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

    fn lock(&self) -> MutexGuard<'_, WorldState> {
        // A panic while holding the lock is a bug in the simulator; the state is still consistent
        // enough to report, so recover rather than poison every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// Serving machines of `app` right now, by process group (every group present, even at zero) and by
    /// release version. One pass without building machine views: capacity is sampled over the whole
    /// fleet after every change, so this is the simulator's hot loop when tracking is on.
    fn census(&self, st: &mut WorldState, app: &str, now: Instant) -> Census {
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

    /// Record a capacity sample if tracking is on (called after every change).
    fn sample(&self, st: &mut WorldState) {
        let Some(app) = st.tracking.as_ref().map(|t| t.app.clone()) else { return };
        let now = Instant::now();
        let census = self.census(st, &app, now);
        let shares = split(st.weights.get(&app), &census.versions);
        let at = self.now_ms(now);
        if let Some(t) = st.tracking.as_mut() {
            t.samples.push((at, census.groups.values().sum()));
            t.traffic.push((at, shares));
            t.groups.push((at, census.groups));
        }
    }

    /// Note, if tracking is on, that machine `id` is about to be destroyed.
    fn note_removal(&self, st: &mut WorldState, id: &str, now: Instant) {
        let Some(app) = st.tracking.as_ref().map(|t| t.app.clone()) else { return };
        let Some((group, version)) = st.machines.get(id).map(|m| (m.group.clone(), m.release.version)) else {
            return;
        };
        let mut passing: BTreeMap<u64, usize> = BTreeMap::new();
        for m in st.machines.values_mut().filter(|m| m.app == app && m.group == group && m.id != id) {
            self.settle(m, now);
            if self.passing(m, now) {
                *passing.entry(m.release.version).or_default() += 1;
            }
        }
        let at_ms = self.now_ms(now);
        if let Some(t) = st.tracking.as_mut() {
            t.removals.push(Removal { at_ms, id: id.to_string(), group, version, passing });
        }
    }

    /// Share of new requests each release of `app` gets right now, in percent (see [`split`]).
    fn shares(&self, st: &mut WorldState, app: &str, now: Instant) -> Vec<(u64, f64)> {
        let census = self.census(st, app, now);
        split(st.weights.get(app), &census.versions)
    }

    /// Open long-lived connections of a machine at `now`.
    fn connections_of(&self, m: &SimMachine, now: Instant) -> u32 {
        if m.state != MachineState::Started {
            return 0;
        }
        let n = self.scenario.traffic.connections;
        match (m.cordoned, m.cordoned_at) {
            (false, _) => n,
            // Created cordoned (a green machine): it never took a connection.
            (true, None) => 0,
            (true, Some(since)) => (0..u64::from(n))
                .filter(|k| {
                    let life = self.latency(
                        self.scenario.traffic.connection_lifetime,
                        &m.id,
                        2_000_000 + m.boots * 64 + k,
                    );
                    since + life > now
                })
                .count() as u32,
        }
    }

    /// Note the connections a stop or destroy of `m` cuts.
    fn cut(&self, cuts: &mut Vec<Cut>, m: &SimMachine, now: Instant) {
        let open = self.connections_of(m, now);
        if open > 0 {
            let cordoned_ms = m.cordoned_at.map(|at| now.saturating_duration_since(at).as_millis() as u64);
            cuts.push(Cut { at_ms: self.now_ms(now), id: m.id.clone(), open, cordoned_ms });
        }
    }

    /// Apply every timeline entry (and crash) that is due.
    fn settle(&self, m: &mut SimMachine, now: Instant) {
        while let Some(&(at, state)) = m.timeline.front() {
            if at > now {
                break;
            }
            m.timeline.pop_front();
            m.state = state;
            if state == MachineState::Started {
                m.started_at = Some(at);
            }
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
    fn first_check_at(&self, m: &SimMachine) -> Option<Instant> {
        let started = m.started_at?;
        let spec = self.checks.iter().max_by_key(|c| c.grace_period)?;
        let jitter = unit(self.scenario.seed, &m.id, 1_000_000 + m.boots);
        Some(started + spec.grace_period + spec.interval.mul_f64(jitter))
    }

    /// When a failing check has failed long enough to call the machine unhealthy (three results).
    fn unhealthy_at(&self, m: &SimMachine) -> Option<Instant> {
        let first = self.first_check_at(m)?;
        let interval = self.checks.iter().map(|c| c.interval).max().unwrap_or_default();
        Some(first + interval * 2)
    }

    fn release_is_unhealthy(&self, m: &SimMachine) -> bool {
        self.scenario.faults.unhealthy_images.contains(&m.release.image)
    }

    /// Whether the machine is started and every check passes: what `checks_of` says, without building
    /// the checks (capacity is sampled over the whole fleet after every change).
    fn passing(&self, m: &SimMachine, now: Instant) -> bool {
        m.state == MachineState::Started
            && (self.checks.is_empty()
                || (self.first_check_at(m).is_none_or(|t| now >= t) && !self.release_is_unhealthy(m)))
    }

    fn checks_of(&self, m: &SimMachine, now: Instant) -> Vec<Check> {
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

    fn view(&self, m: &SimMachine, now: Instant) -> Machine {
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
    fn boot_timeline(&self, m: &mut SimMachine, at: Instant) -> Vec<(Instant, MachineState)> {
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
    fn next_stop(&self, m: &mut SimMachine) -> Duration {
        m.stops += 1;
        self.stop_time(&m.id, m.stops)
    }

    fn latency(&self, [lo, hi]: [u64; 2], key: &str, n: u64) -> Duration {
        let u = unit(self.scenario.seed, key, n);
        Duration::from_millis(lo + ((hi - lo) as f64 * u) as u64)
    }
}

/// Serving machines by process group and by release version.
struct Census {
    groups: BTreeMap<String, usize>,
    versions: BTreeMap<u64, usize>,
}

/// Share of new requests each release gets, in percent, given the machines serving per release. With
/// weights set, a release gets its weight if it has a serving machine (weights of releases with none
/// are spread over the others); without, releases share by serving machine count.
fn split(weights: Option<&Vec<ReleaseWeight>>, serving: &BTreeMap<u64, usize>) -> Vec<(u64, f64)> {
    let total: usize = serving.values().sum();
    if total == 0 {
        return vec![];
    }
    let by_count = || serving.iter().map(|(v, n)| (*v, *n as f64 * 100.0 / total as f64)).collect();
    match weights {
        Some(weights) => {
            let live: Vec<(u64, f64)> = weights
                .iter()
                .filter(|w| serving.contains_key(&w.version))
                .map(|w| (w.version, f64::from(w.percent)))
                .collect();
            let sum: f64 = live.iter().map(|(_, p)| p).sum();
            if sum == 0.0 {
                // Every weighted release lost its machines: fall back to machine count.
                return by_count();
            }
            live.into_iter().map(|(v, p)| (v, p * 100.0 / sum)).collect()
        }
        None => by_count(),
    }
}

/// A handle on the simulated platform, scoped to one app.
pub struct SimPlatform {
    app: String,
    world: Arc<SimWorld>,
    /// Where the fleet is kept between runs, when it is (see [`kept`]).
    keep: Option<kept::Keep>,
}

impl SimPlatform {
    /// The world this handle belongs to.
    pub fn world(&self) -> &Arc<SimWorld> {
        &self.world
    }

    /// One simulated API round trip, with its seeded latency and injected faults.
    async fn api(&self, id: Option<&str>, what: &'static str) -> Result<(), OpError> {
        let (latency, fault) = {
            let mut st = self.world.lock();
            let (key, n) = match id.and_then(|id| st.machines.get_mut(id)) {
                Some(m) => {
                    let n = m.ops.entry(what.to_string()).or_default();
                    *n += 1;
                    (api_key(&m.id, what), *n)
                }
                None => {
                    let n = st.global_ops.entry(what).or_default();
                    *n += 1;
                    (api_key(&self.app, what), *n)
                }
            };
            let w = &self.world;
            let latency = w.latency(w.scenario.latency.api, &key, 2 * n);
            let roll = unit(w.scenario.seed, &key, 2 * n + 1);
            let faults = &w.scenario.faults;
            let fault = if roll < faults.api_timeout_rate {
                Some(ErrorKind::Timeout)
            } else if roll < faults.api_timeout_rate + faults.api_error_rate {
                Some(ErrorKind::Platform)
            } else {
                None
            };
            (latency, fault)
        };
        tokio::time::sleep(latency).await;
        match fault {
            Some(ErrorKind::Timeout) => {
                let wait = self.world.scenario.faults.api_timeout.0;
                tokio::time::sleep(wait).await;
                Err(OpError::new(
                    ErrorKind::Platform,
                    format!(
                        "{what}: the API did not answer within {}",
                        cutover_core::duration::display(wait)
                    ),
                ))
            }
            Some(_) => {
                Err(OpError::new(ErrorKind::Platform, format!("{what}: 503 Service Unavailable (injected)")))
            }
            None => Ok(()),
        }
    }

    /// Look up a machine of this app, settled to now, and run `f` on it; then sample capacity (`f` may
    /// have changed the machine).
    fn with_machine<R>(
        &self,
        id: &str,
        f: impl FnOnce(&SimWorld, &mut SimMachine, Instant) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let r = self.read_machine(id, f);
        self.world.sample(&mut self.world.lock());
        r
    }

    /// Like [`Self::with_machine`] for a look that changes nothing: no capacity sample. Capacity only
    /// drops at a change (or a crash, which the next change's sample sees), and sampling the whole
    /// fleet on every poll of every wait would make tracking quadratic in the fleet's size.
    fn read_machine<R>(
        &self,
        id: &str,
        f: impl FnOnce(&SimWorld, &mut SimMachine, Instant) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let mut st = self.world.lock();
        let now = Instant::now();
        match st.machines.get_mut(id) {
            Some(m) if m.app == self.app => {
                self.world.settle(m, now);
                f(&self.world, m, now)
            }
            _ => Err(OpError::not_found(format!("machine {id} is not part of app {}", self.app))),
        }
    }

    /// Poll a machine on the virtual clock until `done` decides, waking only when something can change.
    async fn wait_until(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&SimWorld, &SimMachine, Instant) -> Option<Result<(), OpError>>,
    ) -> Result<(), OpError> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.read_machine(id, |w, m, now| {
                if let Some(verdict) = done(w, m, now) {
                    return Ok(Err(verdict));
                }
                if now >= deadline {
                    return Ok(Err(Err(OpError::new(
                        ErrorKind::Timeout,
                        format!(
                            "machine {id} was not {what} within {} (it is {})",
                            cutover_core::duration::display(timeout),
                            m.state.as_str()
                        ),
                    ))));
                }
                let wake = [
                    m.timeline.front().map(|t| t.0),
                    m.crash_at,
                    w.first_check_at(m),
                    w.unhealthy_at(m),
                    Some(deadline),
                ]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min()
                .unwrap_or(deadline);
                Ok(Ok(wake))
            })?;
            match next {
                Ok(wake) => tokio::time::sleep_until(wake).await,
                Err(verdict) => return verdict,
            }
        }
    }
}

#[async_trait]
impl Platform for SimPlatform {
    fn name(&self) -> &str {
        "sim"
    }

    fn begin_changes(&self) -> Result<(), OpError> {
        self.keep.as_ref().map_or(Ok(()), |k| k.write_through(&self.world))
    }

    fn end_run(&self) -> Result<(), OpError> {
        self.keep.as_ref().map_or(Ok(()), |k| k.save(&self.world))
    }

    fn fleet_note(&self) -> Option<String> {
        self.keep.as_ref().and_then(kept::Keep::note)
    }

    fn app(&self) -> &str {
        &self.app
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { cordon: true, connection_counts: true, weights: true, stats: true }
    }

    async fn list(&self) -> Result<Vec<Machine>, OpError> {
        self.api(None, "list machines").await?;
        Ok(self.world.snapshot(&self.app))
    }

    async fn get(&self, id: &str) -> Result<Machine, OpError> {
        self.api(Some(id), "get machine").await?;
        self.read_machine(id, |w, m, now| Ok(w.view(m, now)))
    }

    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError> {
        self.api(Some(source), "create machine").await?;
        let template = self.read_machine(source, |_, m, _| Ok(m.clone()))?;
        let mut st = self.world.lock();
        let now = Instant::now();
        let index = st.next_index;
        st.next_index += 1;
        let mut m = SimMachine {
            id: machine_id(self.world.scenario.seed, &self.app, index),
            name: format!("{}-{}-{index}", self.app, template.group),
            release: target.clone(),
            state: MachineState::Created,
            timeline: VecDeque::new(),
            started_at: None,
            cordoned: !routable,
            cordoned_at: None,
            volumes: vec![],
            desired_running: true,
            crash_at: None,
            ops: BTreeMap::new(),
            boots: 0,
            stops: 0,
            ..template
        };
        m.metadata.insert("fly_release_version".into(), target.version.to_string());
        m.timeline = self.world.boot_timeline(&mut m, now).into();
        self.world.settle(&mut m, now);
        let view = self.world.view(&m, now);
        st.machines.insert(m.id.clone(), m);
        self.world.sample(&mut st);
        drop(st);
        self.world.changed(Some(&view.id));
        Ok(view)
    }

    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError> {
        self.api(Some(id), "update machine").await?;
        let r = self.with_machine(id, |w, m, now| {
            m.release = target.clone();
            m.metadata.insert("fly_release_version".into(), target.version.to_string());
            m.timeline.clear();
            if m.desired_running || m.state == MachineState::Failed {
                let stop = w.next_stop(m);
                m.desired_running = true;
                let mut t = vec![(now, MachineState::Stopping)];
                t.extend(w.boot_timeline(m, now + stop));
                m.timeline = t.into();
                w.settle(m, now);
            }
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.api(Some(id), "start machine").await?;
        let r = self.with_machine(id, |w, m, now| {
            m.desired_running = true;
            if matches!(
                m.state,
                MachineState::Stopped
                    | MachineState::Created
                    | MachineState::Failed
                    | MachineState::Suspended
            ) {
                m.timeline = w.boot_timeline(m, now).into();
                w.settle(m, now);
            }
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError> {
        self.api(Some(id), "stop machine").await?;
        let mut cuts = Vec::new();
        let r = self.with_machine(id, |w, m, now| {
            w.cut(&mut cuts, m, now);
            m.desired_running = false;
            if !matches!(m.state, MachineState::Stopped | MachineState::Created) {
                let stop = w.next_stop(m).min(how.timeout);
                m.timeline =
                    VecDeque::from([(now, MachineState::Stopping), (now + stop, MachineState::Stopped)]);
                w.settle(m, now);
            }
            Ok(())
        });
        self.world.lock().cuts.extend(cuts);
        self.world.changed(Some(id));
        r
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        if self.world.lock().destroyed.get(id).is_some_and(|app| *app == self.app) {
            return Ok(());
        }
        self.api(Some(id), "destroy machine").await?;
        let mut cuts = Vec::new();
        self.read_machine(id, |w, m, now| {
            w.cut(&mut cuts, m, now);
            Ok(())
        })?;
        let mut st = self.world.lock();
        st.cuts.extend(cuts);
        self.world.note_removal(&mut st, id, Instant::now());
        st.machines.remove(id);
        st.destroyed.insert(id.to_string(), self.app.clone());
        self.world.sample(&mut st);
        drop(st);
        self.world.changed(Some(id));
        Ok(())
    }

    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError> {
        if state == MachineState::Destroyed && self.world.lock().destroyed.contains_key(id) {
            return Ok(());
        }
        self.api(Some(id), "wait for machine").await?;
        self.wait_until(id, timeout, state.as_str(), |_, m, _| {
            if m.state == state {
                Some(Ok(()))
            } else if state == MachineState::Started && m.state == MachineState::Failed {
                Some(Err(OpError::new(
                    ErrorKind::Unhealthy,
                    format!("machine {} failed: its process exited", m.id),
                )))
            } else {
                None
            }
        })
        .await
    }

    async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError> {
        self.api(Some(id), "set metadata").await?;
        let r = self.with_machine(id, |_, m, _| {
            m.metadata.insert(key.to_string(), value.to_string());
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError> {
        self.api(Some(id), "get machine checks").await?;
        self.wait_until(id, timeout, "passing its checks", |w, m, now| {
            if m.state == MachineState::Failed {
                return Some(Err(OpError::new(
                    ErrorKind::Unhealthy,
                    format!("machine {} failed: its process exited", m.id),
                )));
            }
            if m.state != MachineState::Started {
                return None;
            }
            let checks = w.checks_of(m, now);
            if checks.iter().all(|c| c.status == CheckStatus::Passing) {
                return Some(Ok(()));
            }
            if w.unhealthy_at(m).is_some_and(|t| now >= t) {
                let failing: Vec<String> = checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Critical)
                    .map(|c| format!("check '{}' is critical: {}", c.name, c.output))
                    .collect();
                return Some(Err(OpError::new(
                    ErrorKind::Unhealthy,
                    format!("machine {} on {}: {}", m.id, m.release.image, failing.join("; ")),
                )));
            }
            None
        })
        .await
    }

    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        self.api(Some(id), "cordon machine").await?;
        let r = self.with_machine(id, |_, m, now| {
            if !m.cordoned {
                m.cordoned_at = Some(now);
            }
            m.cordoned = true;
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        self.api(Some(id), "uncordon machine").await?;
        let r = self.with_machine(id, |_, m, _| {
            m.cordoned = false;
            m.cordoned_at = None;
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn connections(&self, id: &str) -> Result<u32, OpError> {
        self.api(Some(id), "count connections").await?;
        self.read_machine(id, |w, m, now| Ok(w.connections_of(m, now)))
    }

    async fn set_weights(&self, weights: &[ReleaseWeight]) -> Result<(), OpError> {
        self.api(None, "set traffic weights").await?;
        let mut st = self.world.lock();
        if weights.is_empty() {
            st.weights.remove(&self.app);
        } else {
            st.weights.insert(self.app.clone(), weights.to_vec());
        }
        self.world.sample(&mut st);
        drop(st);
        self.world.changed(None);
        Ok(())
    }

    async fn weights(&self) -> Result<Vec<ReleaseWeight>, OpError> {
        self.api(None, "get traffic weights").await?;
        Ok(self.world.lock().weights.get(&self.app).cloned().unwrap_or_default())
    }

    async fn stats(&self, version: u64, window: Duration) -> Result<TrafficStats, OpError> {
        self.api(None, "get traffic stats").await?;
        let w = &self.world;
        let mut st = w.lock();
        let now = Instant::now();
        let share = w
            .shares(&mut st, &self.app, now)
            .into_iter()
            .find(|(v, _)| *v == version)
            .map_or(0.0, |(_, p)| p);
        let image = st
            .machines
            .values()
            .find(|m| m.app == self.app && m.release.version == version)
            .map(|m| m.release.image.clone());
        let traffic = &w.scenario.traffic;
        let bad = image.as_ref().and_then(|i| w.scenario.faults.error_images.get(i)).copied();
        let requests = (traffic.rps * window.as_secs_f64() * share / 100.0).round() as u64;
        let errors = (requests as f64 * bad.unwrap_or(traffic.error_rate)).round() as u64;
        let slow = if bad.is_some() { 1.5 } else { 1.0 };
        Ok(TrafficStats {
            requests,
            errors,
            p50_ms: traffic.latency_ms[0] * slow,
            p99_ms: traffic.latency_ms[1] * slow,
        })
    }

    async fn await_promotion(&self, gate: &str, timeout: Duration) -> Result<(), OpError> {
        match self.world.scenario.promote_after {
            Some(after) if after.0 <= timeout => {
                tokio::time::sleep(after.0).await;
                Ok(())
            }
            Some(after) => {
                tokio::time::sleep(timeout).await;
                Err(OpError::new(
                    ErrorKind::Timeout,
                    format!(
                        "manual gate `{gate}` was not promoted within {} (the scenario's operator promotes \
                         after {})",
                        cutover_core::duration::display(timeout),
                        cutover_core::duration::display(after.0)
                    ),
                ))
            }
            // No simulated operator: a real one answers through `cutover promote` (the journal).
            None => Err(OpError::new(
                ErrorKind::Unsupported,
                format!(
                    "manual gate `{gate}`: nobody can promote it (under the simulator, set `promote_after` \
                     in the scenario to play the operator, or run the deploy with a journal and use \
                     `cutover promote`)"
                ),
            )),
        }
    }
}

fn check_failure(spec: &CheckSpec) -> String {
    match &spec.kind {
        cutover_core::CheckKind::Http { method, path, .. } => {
            format!("{method} {path}: 500 Internal Server Error")
        }
        cutover_core::CheckKind::Tcp => "connection refused".to_string(),
    }
}

/// A Fly-like 14-hex-digit machine id, stable for a seed, app and index.
fn machine_id(seed: u64, app: &str, index: u64) -> String {
    let h = splitmix(seed ^ fnv(app) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    format!("{:014x}", h & 0x00ff_ffff_ffff_ffff)
}

/// What keys the draws of API call `what` on `subject` (a machine id, or the app for calls on no
/// machine).
fn api_key(subject: &str, what: &str) -> String {
    format!("{subject}/{what}")
}

/// A uniform draw in [0, 1) from (seed, key, n): the same inputs always give the same number.
fn unit(seed: u64, key: &str, n: u64) -> f64 {
    let h = splitmix(seed ^ fnv(key) ^ splitmix(n));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_check() -> CheckSpec {
        CheckSpec {
            name: "health".into(),
            kind: cutover_core::CheckKind::Http {
                method: "GET".into(),
                path: "/health".into(),
                protocol: "http".into(),
                headers: vec![],
                tls_skip_verify: false,
            },
            grace_period: Duration::from_secs(1),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(2),
            port: None,
        }
    }

    fn world(scenario: &str) -> Arc<SimWorld> {
        SimWorld::new(Scenario::parse(scenario).unwrap(), "app", "img:v1", vec![http_check()])
    }

    #[tokio::test(start_paused = true)]
    async fn update_then_wait_brings_machine_up_on_new_release() {
        let w = world("[fleet]\nmachines = 2");
        let p = w.platform("app");
        let id = p.list().await.unwrap()[0].id.clone();
        let v2 = Release { version: 2, image: "img:v2".into() };
        p.update(&id, &v2).await.unwrap();
        assert_ne!(p.get(&id).await.unwrap().state, MachineState::Started);
        p.wait_state(&id, MachineState::Started, Duration::from_secs(60)).await.unwrap();
        p.wait_healthy(&id, Duration::from_secs(60)).await.unwrap();
        let m = p.get(&id).await.unwrap();
        assert_eq!(m.release, v2);
        assert!(m.is_serving());
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_image_fails_its_checks() {
        let w = world("[faults]\nunhealthy_images = [\"img:bad\"]");
        let p = w.platform("app");
        let id = p.list().await.unwrap()[0].id.clone();
        p.update(&id, &Release { version: 2, image: "img:bad".into() }).await.unwrap();
        let e = p.wait_healthy(&id, Duration::from_secs(300)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unhealthy, "{e}");
        assert!(e.message.contains("500"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_times_out_on_a_stopped_machine() {
        let w = world("[fleet]\nmachines = 1\nstopped = 1");
        let p = w.platform("app");
        let id = p.list().await.unwrap()[0].id.clone();
        let e = p.wait_state(&id, MachineState::Started, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn other_apps_machines_are_not_found() {
        let w = world("[fleet]\nneighbours = 1");
        let victim = w.snapshot("app-neighbour")[0].id.clone();
        let p = w.platform("app");
        let e = p.destroy(&victim).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(w.snapshot("app-neighbour").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn scheduled_crash_fails_the_machine() {
        let w = world("[[faults.crash]]\nmachine = 0\nat = \"10s\"");
        let p = w.platform("app");
        let id = p.list().await.unwrap().into_iter().find(|m| m.name.ends_with("-0")).unwrap().id;
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(p.get(&id).await.unwrap().state, MachineState::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn volumes_stay_with_their_machine() {
        let w = world("[fleet]\nmachines = 2\nvolumes = true");
        let p = w.platform("app");
        let source = p.list().await.unwrap()[0].clone();
        assert_eq!(source.volumes.len(), 1);
        let green =
            p.clone_from(&source.id, &Release { version: 2, image: "img:v2".into() }, false).await.unwrap();
        assert!(green.volumes.is_empty(), "a volume attaches to one machine only");
        assert!(green.cordoned, "not routable until uncordoned");
    }

    #[tokio::test(start_paused = true)]
    async fn cordoned_machines_drain_their_connections() {
        let w =
            world("[fleet]\nmachines = 1\n[traffic]\nconnections = 3\nconnection_lifetime = [1000, 20000]");
        let p = w.platform("app");
        let id = p.list().await.unwrap()[0].id.clone();
        assert_eq!(p.connections(&id).await.unwrap(), 3);
        p.cordon(&id).await.unwrap();
        let mut last = 3;
        for _ in 0..25 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let open = p.connections(&id).await.unwrap();
            assert!(open <= last, "connections only close after a cordon");
            last = open;
        }
        assert_eq!(last, 0, "all closed after the longest lifetime");
        p.uncordon(&id).await.unwrap();
        assert_eq!(p.connections(&id).await.unwrap(), 3, "new connections once routable again");
        p.destroy(&id).await.unwrap();
        assert_eq!(w.cut_connections().len(), 1, "destroying a busy machine cuts its connections");
    }

    #[tokio::test(start_paused = true)]
    async fn weights_split_traffic_and_stats_follow() {
        let w = world(
            "[fleet]\nmachines = 4\n[traffic]\nrps = 100\nerror_rate = 0.0\n[faults]\nerror_images = { \"img:v2\" = 0.5 }",
        );
        let p = w.platform("app");
        let ms = p.list().await.unwrap();
        let v2 = Release { version: 2, image: "img:v2".into() };
        let canary = p.clone_from(&ms[0].id, &v2, false).await.unwrap();
        p.wait_healthy(&canary.id, Duration::from_secs(120)).await.unwrap();
        p.uncordon(&canary.id).await.unwrap();
        // By machine count: 1 of 5.
        assert_eq!(p.stats(2, Duration::from_secs(10)).await.unwrap().requests, 200);
        p.set_weights(&[
            ReleaseWeight { version: 1, percent: 90 },
            ReleaseWeight { version: 2, percent: 10 },
        ])
        .await
        .unwrap();
        let canary_stats = p.stats(2, Duration::from_secs(10)).await.unwrap();
        assert_eq!(canary_stats.requests, 100);
        assert_eq!(canary_stats.errors, 50);
        assert_eq!(p.stats(1, Duration::from_secs(10)).await.unwrap().errors, 0);
        assert_eq!(p.weights().await.unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_gates_follow_the_scenario() {
        let p = world("promote_after = \"30s\"").platform("app");
        let start = Instant::now();
        p.await_promotion("step-25", Duration::from_secs(60)).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(30));
        let e = p.await_promotion("step-25", Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout, "the operator is slower than the gate");
        let p = world("").platform("app");
        let e = p.await_promotion("step-25", Duration::from_secs(60)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "no operator: the journal's `cutover promote` answers");
        assert!(e.message.contains("promote_after"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn same_seed_same_ids_and_latencies() {
        let a = world("seed = 9");
        let b = world("seed = 9");
        assert_eq!(a.snapshot("app"), b.snapshot("app"));
        assert_ne!(world("seed = 10").snapshot("app")[0].id, a.snapshot("app")[0].id);
    }
}
