//! `cutover verify`: a strategy run through the simulator's conformance scenarios, its invariants
//! checked after every change the simulator recorded and at the end.
//!
//! # Scenarios
//!
//! Fleets of 1, 3 and 500 machines spread over two regions (`ams`, `iad`) and two process groups
//! (`app`, `worker`), deployed from v1 to v2 with flyctl's defaults (`max_unavailable = 0.33`,
//! `wait_timeout = 5m`), one HTTP check per machine, four long-lived connections per serving machine,
//! and a simulated operator who promotes manual gates after 30 s. The happy path runs on every fleet;
//! each fault on the 3- and 500-machine fleets: the new release fails its checks, 5% of API calls fail
//! transiently, a machine crashes 8 s in, the new release boots slower than `wait_timeout`. Then the
//! flaky platform: 20% and 40% of API calls failing and 2% hanging for 30 s, on fleets of 4 and 22
//! machines under seeds 3 and 7. `--sweep` runs only that family, over a fixed grid ([`sweep`]: 24
//! seeds × 12 fleet sizes from 1 to 30 × 10–40% errors), and reports the share of clean endings.
//!
//! # Invariants, and why each binds any strategy
//!
//! - `sandbox`: the strategy returns a verdict. A trap or a sandbox limit leaves the deploy wherever
//!   it was, so no strategy may rely on them; verify runs with the default sandbox (no files, network,
//!   environment), the memory and CPU-budget limits and a real-time deadline per scenario, and stops a
//!   run that passes a day of simulated time or makes more host calls than any deploy needs.
//! - `verdict`: a deploy must fail when the new release cannot pass its checks within `wait_timeout`
//!   (the plan's bound on every wait), and may fail only for a cause the scenario injected. Otherwise
//!   `cutover deploy`'s exit code, which CI acts on, would lie.
//! - `one-release`: the fleet ends on the new release after success and on the previous one after
//!   failure. Anything else is a half-done deploy, which cutover promises never happens silently. A
//!   strategy that gives up on an injected fault (transient errors outlasting its retries, the crash
//!   of a machine it waited on) may stop where it is, as its error says; this is then not judged.
//! - `all-serving`: every machine is started, uncordoned and passing once the fleet settles, but one
//!   that crashed after the deploy last touched it (nothing restarts it).
//! - `nothing-lost`: as many machines in each process group and region at the end as at the start. A
//!   deploy replaces machines; it does not shrink the app, move it, or leave old machines behind.
//! - `capacity`: at every change, each process group keeps at least its starting serving count minus
//!   what `max_unavailable` allows for it (and minus a machine the scenario crashed). It is the one
//!   knob the app's owner set for availability. For a blue/green strategy the bound holds trivially.
//!   `--allow-downtime` waives it for strategies that do not promise availability (like `immediate`).
//! - `replacement-first`: a machine of the previous release is destroyed only when its process group
//!   has more new-release machines that passed their checks than previous-release machines destroyed
//!   so far. A destroyed machine cannot come back, so destroying blue before green is healthy loses
//!   capacity for good if green fails. (Updating in place is not destroying.)
//! - `drain` (strategies with a `drain_timeout` parameter): no machine is stopped or destroyed with open
//!   connections before it has been cordoned for `drain_timeout`. Without that parameter a strategy
//!   promises nothing about connections, so this is not judged.
//! - `weights` (strategies that set traffic weights): while both releases serve, the new release gets
//!   no more of the new requests than the weight the strategy gave it. When one release serves alone,
//!   no split can hold, so those instants are not judged.
//! - `clean-end`: the fleet ends on exactly one release (the new one on success, the previous one on
//!   failure), every machine serving but as many stopped as before, none cordoned that was not, and as
//!   many per group and region as at the start. Unlike `one-release`, `all-serving` and `nothing-lost`,
//!   transient errors excuse nothing here: every call of a deploy's clean-up is idempotent, so a
//!   strategy can retry it for as long as `wait_timeout` allows. Only a crashed machine and a declared
//!   standby are exceptions.
//!
//! The checks live in [`invariants`], shared with the property tests; [`report`] renders the result.

mod file;
pub mod invariants;
pub mod report;

pub use file::FileScenario;
pub use invariants::{Invariant, Verdict, Violation};
pub use report::{Report, RunOutcome, ScenarioResult};

use cutover_core::contract::{DeployPlan, MaxUnavailable, ParamKind, ParamValue, StrategyInfo};
use cutover_core::events::{Event, EventKind, EventSink, HostCall, SinkError};
use cutover_core::metrics::MetricsSource;
use cutover_core::{CheckKind, CheckSpec, Release};
use cutover_runtime::{HostClock, Limits, Recorder, RunContext, Runtime, StrategyComponent};
use cutover_sim::{Scenario, ScenarioMetrics, SimWorld};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The app every scenario deploys.
const APP: &str = "verify-app";
/// The release the fleet starts on, and the one each scenario deploys.
const V1: &str = "registry.example/verify-app:v1";
const V2: &str = "registry.example/verify-app:v2";
/// The plan's bound on each wait (flyctl's default).
const WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// How slowly the slow release boots: well past `WAIT_TIMEOUT`.
const SLOW_BOOT: Duration = Duration::from_secs(1200);
/// When the crash scenario's machine crashes: inside the first batch of every built-in.
const CRASH_AT: Duration = Duration::from_secs(8);

/// The fault a scenario injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Nothing goes wrong.
    None,
    /// The new release boots but fails its health checks.
    Unhealthy,
    /// 5% of API calls fail with a transient 503.
    Flaky,
    /// The last machine of the starting fleet crashes 8 s into the deploy.
    Crash,
    /// The new release boots slower than `wait_timeout`.
    Timeout,
    /// A flaky platform: this share (in percent) of API calls fail with a transient 503, and 2% more
    /// hang for 30 s before failing. Every call of a deploy's clean-up is idempotent, so a strategy must
    /// still end clean (see [`Invariant::CleanEnd`]).
    Unreliable {
        /// Percent of API calls that fail with a transient error.
        error_pct: u8,
    },
    /// A scenario file's own faults and metrics (`cutover verify --scenario`).
    File {
        /// Its `expect = "fail"`: the new release regresses and the deploy must fail.
        must_fail: bool,
    },
}

/// Share of API calls that hang in the [`Fault::Unreliable`] scenarios.
pub const UNRELIABLE_TIMEOUT_RATE: f64 = 0.02;
/// How long a hanging API call hangs in the [`Fault::Unreliable`] scenarios.
pub const UNRELIABLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Fault {
    /// How the report names the fault.
    pub fn label(self) -> String {
        match self {
            Self::None => "happy path".into(),
            Self::Unhealthy => "new release unhealthy".into(),
            Self::Flaky => "5% API errors".into(),
            Self::Crash => "crash mid-deploy".into(),
            Self::Timeout => "wait timeout expires".into(),
            Self::File { must_fail: true } => "scenario file, new release regresses".into(),
            Self::File { must_fail: false } => "scenario file, new release healthy".into(),
            Self::Unreliable { error_pct } => format!(
                "{error_pct}% API errors, {}% hanging {}s",
                (UNRELIABLE_TIMEOUT_RATE * 100.0) as u32,
                UNRELIABLE_TIMEOUT.as_secs()
            ),
        }
    }

    /// Share of API calls failing with a transient error.
    fn api_error_rate(self) -> f64 {
        match self {
            Self::Flaky => 0.05,
            Self::Unreliable { error_pct } => f64::from(error_pct) / 100.0,
            _ => 0.0,
        }
    }
}

/// One conformance scenario: a fault on a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScenarioSpec {
    /// What goes wrong.
    pub fault: Fault,
    /// How many machines the fleet starts with, over both regions and process groups.
    pub machines: usize,
    /// The simulator's seed: which calls fail, how long boots take.
    pub seed: u64,
}

/// The seed of every scenario but the flaky-platform ones, which vary it.
pub const DEFAULT_SEED: u64 = 7;

impl ScenarioSpec {
    /// How the report names the scenario, e.g. `crash mid-deploy, 500 machines`.
    pub fn name(&self) -> String {
        let seed = if self.seed == DEFAULT_SEED { String::new() } else { format!(", seed {}", self.seed) };
        format!(
            "{}, {} machine{}{seed}",
            self.fault.label(),
            self.machines,
            if self.machines == 1 { "" } else { "s" }
        )
    }

    /// The simulator scenario (see `cutover_sim::Scenario` for the keys).
    fn toml(&self) -> String {
        let mut s = format!(
            "seed = {}\npromote_after = \"30s\"\n[fleet]\nmachines = {}\nregions = [\"ams\", \"iad\"]\n\
             groups = [\"app\", \"worker\"]\n[faults]\n",
            self.seed, self.machines
        );
        match self.fault {
            Fault::None => {}
            Fault::Unhealthy => s += &format!("unhealthy_images = [{V2:?}]\n"),
            Fault::Flaky | Fault::Unreliable { .. } => {
                s += &format!("api_error_rate = {}\n", self.fault.api_error_rate());
                if let Fault::Unreliable { .. } = self.fault {
                    s += &format!(
                        "api_timeout_rate = {UNRELIABLE_TIMEOUT_RATE}\napi_timeout = \"{}s\"\n",
                        UNRELIABLE_TIMEOUT.as_secs()
                    );
                }
            }
            Fault::Timeout => s += &format!("slow_images = {{ {V2:?} = \"{}s\" }}\n", SLOW_BOOT.as_secs()),
            // A scenario file brings its own text; this is never asked of it.
            Fault::File { .. } => {}
            Fault::Crash => {
                s += &format!(
                    "[[faults.crash]]\nmachine = {}\nat = \"{}s\"\n",
                    self.machines - 1,
                    CRASH_AT.as_secs()
                )
            }
        }
        s
    }
}

/// Every conformance scenario, in report order: the happy path on fleets of 1, 3 and 500 machines,
/// then each fault on 3 and 500, then the flaky platform (20% and 40% API errors with hanging calls)
/// on fleets of 4 and 22 under two seeds.
pub fn scenarios() -> Vec<ScenarioSpec> {
    let seed = DEFAULT_SEED;
    let mut all: Vec<ScenarioSpec> =
        [1, 3, 500].into_iter().map(|machines| ScenarioSpec { fault: Fault::None, machines, seed }).collect();
    for fault in [Fault::Unhealthy, Fault::Flaky, Fault::Crash, Fault::Timeout] {
        all.extend([3, 500].into_iter().map(|machines| ScenarioSpec { fault, machines, seed }));
    }
    for error_pct in [20, 40] {
        for machines in [4, 22] {
            for seed in [3, 7] {
                all.push(ScenarioSpec { fault: Fault::Unreliable { error_pct }, machines, seed });
            }
        }
    }
    all
}

/// Seeds of the flaky-platform sweep ([`sweep`]).
pub const SWEEP_SEEDS: std::ops::RangeInclusive<u64> = 1..=24;
/// Fleet sizes of the flaky-platform sweep.
pub const SWEEP_SIZES: [usize; 12] = [1, 2, 3, 4, 6, 9, 12, 15, 18, 22, 26, 30];
/// API error rates (percent) of the flaky-platform sweep.
pub const SWEEP_ERROR_PCT: [u8; 4] = [10, 20, 30, 40];

/// The fixed flaky-platform sweep `cutover verify --sweep` runs: every seed of [`SWEEP_SEEDS`] on
/// every size of [`SWEEP_SIZES`] at every rate of [`SWEEP_ERROR_PCT`], each with 2% of calls hanging
/// 30 s. The share of its runs that end clean is the figure BENCHMARKS.md tracks.
pub fn sweep() -> Vec<ScenarioSpec> {
    let mut all = Vec::new();
    for error_pct in SWEEP_ERROR_PCT {
        for machines in SWEEP_SIZES {
            for seed in SWEEP_SEEDS {
                all.push(ScenarioSpec { fault: Fault::Unreliable { error_pct }, machines, seed });
            }
        }
    }
    all
}

/// How verify runs a strategy.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sandbox's limits for each scenario.
    pub limits: Limits,
    /// The strategy does not promise availability (like `immediate`): see [`Invariant::Capacity`].
    pub allow_downtime: bool,
    /// The strategy keeps the release it replaces as stopped standbys: see [`invariants::Setup`].
    pub allow_standby: bool,
    /// Host calls one scenario may make before it is stopped (a deploy of 500 machines makes hundreds).
    pub max_host_calls: u64,
    /// Simulated time one scenario may take before it is stopped.
    pub max_simulated: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // The runtime's memory limit and CPU budget; a deadline fit for CI rather than a real deploy.
            limits: Limits { deadline: Duration::from_secs(60), ..Limits::default() },
            allow_downtime: false,
            allow_standby: false,
            max_host_calls: 200_000,
            max_simulated: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why verify could not run the scenarios at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The strategy needs a parameter that has no default, and verify has no config to take it from.
    #[error(
        "strategy {strategy} requires parameter `{param}`, which has no default; verify runs every \
         strategy with its defaults, so give `{param}` a default in describe()"
    )]
    RequiredParam {
        /// The strategy's name, as `describe()` gives it.
        strategy: String,
        /// The parameter without a default.
        param: String,
    },
    /// A scenario file (`--scenario`) cannot be read, or says something verify cannot run.
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file.
        path: String,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// Run `strategy` through every scenario (on a paused tokio clock: the simulator's virtual time).
pub async fn verify(
    runtime: &Runtime,
    strategy: &StrategyComponent,
    info: &StrategyInfo,
    opts: &Options,
) -> Result<Report, VerifyError> {
    verify_scenarios(runtime, strategy, info, opts, scenarios()).await
}

/// Run `strategy` through the given scenarios (e.g. [`sweep`], or one of [`scenarios`]), on a paused
/// tokio clock, with its parameters' defaults.
pub async fn verify_scenarios(
    runtime: &Runtime,
    strategy: &StrategyComponent,
    info: &StrategyInfo,
    opts: &Options,
    specs: Vec<ScenarioSpec>,
) -> Result<Report, VerifyError> {
    let params = default_params(info)?;
    let mut results = Vec::new();
    for spec in specs {
        let scenario = match Scenario::parse(&spec.toml()) {
            Ok(s) => s,
            Err(e) => {
                results
                    .push(ScenarioResult::broken(spec, format!("internal: scenario does not parse: {e:#}")));
                continue;
            }
        };
        results.push(run_scenario(runtime, strategy, &params, spec, scenario, opts).await);
    }
    Ok(Report {
        strategy: info.name.clone(),
        allow_downtime: opts.allow_downtime,
        allow_standby: opts.allow_standby,
        scenarios: results,
    })
}

/// Run `strategy` through scenario files ([`FileScenario`]), each with the strategy's defaults and
/// the file's `[verify] params` on top (converted to the declared kinds by `convert`, the config's own
/// conversion), and its `[[metrics]]` answering the strategy's metrics queries.
pub async fn verify_files(
    runtime: &Runtime,
    strategy: &StrategyComponent,
    info: &StrategyInfo,
    opts: &Options,
    files: Vec<FileScenario>,
    convert: fn(ParamKind, &toml::Value) -> Option<ParamValue>,
) -> Result<Report, VerifyError> {
    // A parameter without a default may come from the file: checked once the file's are on top.
    let defaults: BTreeMap<String, ParamValue> =
        info.params.iter().filter_map(|p| Some((p.name.clone(), p.default.clone()?))).collect();
    let mut results = Vec::new();
    for file in files {
        let params = file.params(info, &defaults, convert)?;
        if let Some(missing) = info.params.iter().find(|p| !params.contains_key(&p.name)) {
            return Err(VerifyError::Scenario {
                path: file.path,
                message: format!(
                    "strategy {} requires parameter `{}`, which has no default: set it in `[verify] params`",
                    info.name, missing.name
                ),
            });
        }
        let spec = ScenarioSpec {
            fault: Fault::File { must_fail: file.must_fail },
            machines: file.scenario.fleet.machines,
            seed: file.scenario.seed,
        };
        let mut result = run_scenario(runtime, strategy, &params, spec, file.scenario, opts).await;
        result.name = file.name;
        results.push(result);
    }
    Ok(Report {
        strategy: info.name.clone(),
        allow_downtime: opts.allow_downtime,
        allow_standby: opts.allow_standby,
        scenarios: results,
    })
}

/// The strategy's parameters with their defaults; a parameter without one cannot be verified.
fn default_params(info: &StrategyInfo) -> Result<BTreeMap<String, ParamValue>, VerifyError> {
    let mut params = BTreeMap::new();
    for spec in &info.params {
        match &spec.default {
            Some(d) => {
                params.insert(spec.name.clone(), d.clone());
            }
            None => {
                return Err(VerifyError::RequiredParam {
                    strategy: info.name.clone(),
                    param: spec.name.clone(),
                });
            }
        }
    }
    Ok(params)
}

/// The one health check every scenario's machines have.
fn http_check() -> CheckSpec {
    CheckSpec {
        name: "http".into(),
        kind: CheckKind::Http {
            method: "GET".into(),
            path: "/health".into(),
            protocol: "http".into(),
            headers: vec![],
            tls_skip_verify: false,
        },
        grace_period: Duration::from_secs(5),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        port: Some(8080),
    }
}

async fn run_scenario(
    runtime: &Runtime,
    strategy: &StrategyComponent,
    params: &BTreeMap<String, ParamValue>,
    spec: ScenarioSpec,
    scenario: Scenario,
    opts: &Options,
) -> ScenarioResult {
    let wall = std::time::Instant::now();
    // A scenario's `[[metrics]]` answer the strategy's queries; without any, a metric gate meets
    // `unsupported`, which a strategy must handle (fall back to checks), and verify judges that it does.
    let metrics: Option<Arc<dyn MetricsSource>> = (!scenario.metrics.is_empty())
        .then(|| Arc::new(ScenarioMetrics::new(scenario.metrics.clone())) as Arc<dyn MetricsSource>);
    let world = SimWorld::new(scenario, APP, V1, vec![http_check()]);
    world.track_availability(APP);
    let fleet = world.snapshot(APP);
    let mut groups: Vec<String> = fleet.iter().map(|m| m.process_group.clone()).collect();
    groups.sort();
    groups.dedup();
    let previous = Release { version: 1, image: V1.into() };
    let target = Release { version: 2, image: V2.into() };
    let max_unavailable = MaxUnavailable::Fraction(0.33);
    let plan = DeployPlan {
        app: APP.into(),
        target: target.clone(),
        previous: Some(previous.clone()),
        process_groups: groups,
        max_unavailable,
        wait_timeout_ms: WAIT_TIMEOUT.as_millis() as u64,
        kill_signal: "SIGINT".into(),
        kill_timeout_ms: 5000,
        params: params.clone(),
    };
    let sink = Arc::new(Keep::new(opts.max_host_calls));
    let clock = HostClock::simulated();
    let ctx = RunContext {
        platform: Arc::new(world.platform(APP)),
        // The sandbox's own host-call limit, no looser than verify's: a flood is reported as the
        // limit a deploy would hit.
        limits: Limits { host_calls: opts.limits.host_calls.min(opts.max_host_calls), ..opts.limits },
        concurrency: 16,
        clock,
        recorder: Recorder::new(sink.clone(), clock),
        seed: 2,
        promotions: None,
        replay: None,
        // Verify judges what a strategy does with every right; a policy narrows it only in a deploy.
        grants: Default::default(),
        metrics,
        // The blast radius a deploy would have: a strategy that needs more is told here, not in
        // production.
        creation_bound: opts.limits.creation_bound(fleet.len(), plan.process_groups.len()),
    };
    // Dropping the deploy future cancels the guest mid-call; the store goes with it.
    let result = tokio::select! {
        r = runtime.deploy(strategy, &plan, ctx) => r.map_err(|e| e.to_string()),
        () = tokio::time::sleep(opts.max_simulated) => Err(format!(
            "the deploy was still running after {} of simulated time, so it was stopped",
            cutover_core::duration::display(opts.max_simulated)
        )),
        () = sink.exceeded.notified() => Err(format!(
            "the strategy made more than {} host calls, so it was stopped (it is probably looping)",
            opts.max_host_calls
        )),
    };
    let simulated = clock.elapsed();
    // Let stragglers finish (a strategy may return while machines boot), then read the end state.
    let settle = if spec.fault == Fault::Timeout { SLOW_BOOT } else { Duration::ZERO };
    tokio::time::sleep(settle + Duration::from_secs(600)).await;
    let end = world.snapshot(APP);
    let availability = world.availability().unwrap_or_default();
    let cuts = world.cuts();
    let events = sink.events();
    // The scenario names the crashing machine by its index in the starting fleet, which its name ends
    // with (the fleet is listed by id, not by index).
    let crash_suffix = format!("-{}", spec.machines - 1);
    let crash = (spec.fault == Fault::Crash)
        .then(|| fleet.iter().find(|m| m.name.ends_with(&crash_suffix)))
        .flatten()
        .map(|m| (m.id.clone(), CRASH_AT));
    let setup = invariants::Setup {
        fleet,
        previous,
        target,
        max_unavailable,
        faults: invariants::Faults {
            api_error_rate: spec.fault.api_error_rate(),
            unhealthy: spec.fault == Fault::Unhealthy,
            slow: spec.fault == Fault::Timeout,
            crash,
            regression: spec.fault == Fault::File { must_fail: true },
        },
        drain_timeout: match params.get("drain_timeout") {
            Some(ParamValue::DurationMs(ms)) => Some(Duration::from_millis(*ms)),
            _ => None,
        },
        allow_downtime: opts.allow_downtime,
        allow_standby: opts.allow_standby,
    };
    let seen = invariants::Observed {
        result: &result,
        events: &events,
        availability: &availability,
        cuts: &cuts,
        end: &end,
    };
    let checks = invariants::check(&setup, &seen);
    ScenarioResult {
        name: spec.name(),
        fault: spec.fault,
        machines: spec.machines,
        outcome: RunOutcome::of(&result),
        simulated_ms: simulated.as_millis() as u64,
        wall_ms: wall.elapsed().as_millis() as u64,
        host_calls: sink.count.load(Ordering::Relaxed),
        checks,
    }
}

/// Keeps the host calls the invariants read (those that change the fleet), counts every call, and
/// says when a run has made too many: a looping strategy must not grow the host's memory without bound.
struct Keep {
    events: Mutex<Vec<Event>>,
    count: AtomicU64,
    limit: u64,
    exceeded: tokio::sync::Notify,
}

impl Keep {
    fn new(limit: u64) -> Self {
        Self { events: Mutex::new(Vec::new()), count: AtomicU64::new(0), limit, exceeded: Default::default() }
    }

    fn events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl EventSink for Keep {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.limit + 1 {
            self.exceeded.notify_one();
        }
        if n > self.limit {
            return Ok(());
        }
        if let EventKind::HostCall { call, .. } = &event.kind
            && (call.mutates() || matches!(call, HostCall::Phase { .. }))
        {
            self.events.lock().unwrap_or_else(|e| e.into_inner()).push(event.clone());
        }
        Ok(())
    }
}
