//! The deploy driver: from a config to a finished (or cleanly failed) deploy.
//!
//! It resolves the strategy (built-in or file), checks its parameters, opens the platform, works out
//! the previous and target releases from what the machines run and what the journal remembers, and
//! hands the strategy a plan. The strategy decides; the driver records the release in the journal
//! before the strategy starts and its outcome when it ends.

pub mod demo;
pub mod dry_run;

mod launch;
pub mod lease;
mod resume;
mod rollback;
pub mod state;
pub mod status;

pub use cutover_journal::{Journal, JournalError, ReleaseRecord, ReleaseStatus};
use cutover_journal as journal;
pub use resume::{interrupted_platform, latest_platform};
pub use state::StateDir;

use cutover_config::{Config, ConfigError, PlatformKind, StrategyRef};
use cutover_core::contract::{DeployPlan, StrategyInfo};
use cutover_core::events::Tee;
use cutover_core::events::{DeployStart, EventKind, EventSink, FleetSummary, Outcome};
use cutover_fly::{FlyOptions, FlyPlatform};
use cutover_local::daemon::fleet::AppSpec;
use cutover_local::{LocalDaemon, LocalPlatform};
use cutover_sim::{SavedWorld, Scenario, SimWorld};
use cutover_core::{ErrorKind, Machine, Platform, Release};
use cutover_runtime::{
    HostClock, PromotionGate, Recorder, RunContext, Runtime, RuntimeError, StrategyComponent,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a deploy could not run, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The configuration or the command line is wrong; nothing was changed.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The input is wrong in some other way (strategy file, image); nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// The strategy component cannot be used with this host; nothing was changed.
    #[error("{0}")]
    Strategy(RuntimeError),
    /// The platform could not be reached or set up; nothing was changed.
    #[error("{0}")]
    Platform(String),
    /// The journal could not be written, so the deploy was not started; nothing was changed.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// Another deploy holds a lease on a machine of the app; nothing was changed.
    #[error("{0}")]
    Busy(String),
    /// `cutover resume` cannot take the interrupted deploy up again (the message says why and what
    /// state the fleet is in); the resume changed nothing.
    #[error("{0}")]
    CannotResume(String),
}

impl DeployError {
    /// Input errors (exit code 2) as opposed to failures while deploying.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Config(_) | Self::BadInput(_) | Self::Strategy(_) | Self::CannotResume(_))
    }
}

/// Options that override the config for one deploy (the CLI's flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub strategy: Option<String>,
    pub image: Option<String>,
    pub platform: Option<PlatformKind>,
    pub scenario: Option<PathBuf>,
    /// The `cutover` binary, which the local platform runs as its daemon (`cutover local serve`).
    pub cutover_exe: Option<PathBuf>,
    /// The Fly API token (`--access-token`; else `FLY_API_TOKEN`). Its `Debug` is redacted.
    pub access_token: Option<cutover_machines_api::Token>,
}

/// How a deploy ended.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub outcome: Outcome,
    /// Whether it returned the app to an earlier release.
    pub rollback: bool,
    /// Its number in the journal, when there is one.
    pub release_id: Option<i64>,
    /// The strategy's error or the sandbox's, when the deploy failed.
    pub error: Option<String>,
    pub target: Release,
    pub previous: Option<Release>,
    pub fleet: FleetSummary,
    /// Time on the host clock (virtual under the simulator).
    pub duration: Duration,
    /// Real time the deploy took.
    pub wall: Duration,
}

/// A strategy ready to run: its component and what it says about itself.
pub struct ResolvedStrategy {
    /// How the config (or `--strategy`) named it.
    pub reference: StrategyRef,
    pub label: String,
    pub component: Arc<StrategyComponent>,
    pub info: StrategyInfo,
}

/// Load a strategy by built-in name or `.wasm` path.
pub async fn resolve_strategy(
    runtime: &Runtime,
    strategy: &StrategyRef,
) -> Result<ResolvedStrategy, DeployError> {
    let (label, bytes): (String, std::borrow::Cow<'static, [u8]>) = match strategy {
        StrategyRef::BuiltIn(name) => match cutover_builtins::builtin(name) {
            Some(bytes) => (name.clone(), bytes.into()),
            None => {
                return Err(DeployError::BadInput(format!(
                    "unknown strategy `{name}`: the built-in strategies are {}; to use your own, give the path \
                     to its .wasm (e.g. `strategy = \"./my-strategy.wasm\"`)",
                    cutover_builtins::names().join(", ")
                )));
            }
        },
        StrategyRef::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                DeployError::BadInput(format!("cannot read strategy component {}: {e}", path.display()))
            })?;
            (path.display().to_string(), bytes.into())
        }
    };
    let component = runtime.load(&bytes).map_err(|e| DeployError::Strategy(with_subject(&label, e)))?;
    let info =
        runtime.describe(&component).await.map_err(|e| DeployError::Strategy(with_subject(&label, e)))?;
    Ok(ResolvedStrategy { reference: strategy.clone(), label, component, info })
}

fn with_subject(label: &str, e: RuntimeError) -> RuntimeError {
    match e {
        RuntimeError::NotAComponent(m) => RuntimeError::NotAComponent(format!("{label}: {m}")),
        RuntimeError::NotAStrategy(m) => RuntimeError::NotAStrategy(format!("{label}: {m}")),
        RuntimeError::Incompatible(m) => RuntimeError::Incompatible(format!("{label}: {m}")),
        other => other,
    }
}

/// An opened platform, plus the simulator's world when it is the simulator (for reports and tests).
pub struct OpenedPlatform {
    pub platform: Arc<dyn Platform>,
    pub sim: Option<Arc<SimWorld>>,
    /// The concurrency bound to use (config, or the scenario's override).
    pub concurrency: usize,
    /// Where the simulator's fleet is kept between runs, when it is kept.
    pub keep: Option<KeptFleet>,
    /// The local platform, which can launch an app that has no machines yet.
    pub local: Option<Arc<LocalPlatform>>,
}

impl OpenedPlatform {
    /// Before a run changes anything: keep the simulated fleet on disk change by change, as a real
    /// platform would keep it if this process died (commands that only read do not call this).
    pub fn write_through(&self) -> Result<(), DeployError> {
        if let (Some(world), Some(k)) = (&self.sim, &self.keep) {
            world
                .write_through(k.path.clone(), &k.fingerprint)
                .map_err(|e| DeployError::Platform(format!("keeping the simulated fleet: {e:#}")))?;
        }
        Ok(())
    }
}

/// Where and under which scenario fingerprint a simulated fleet is saved after a run.
pub struct KeptFleet {
    pub path: PathBuf,
    pub fingerprint: String,
}

/// Open the platform a config (with overrides) names. With a state directory, the simulator continues
/// from the fleet the last run left (for the same scenario fleet) and is saved again after the run; the
/// local platform's daemon is found (or started) there.
pub async fn open_platform(
    config: &Config,
    overrides: &Overrides,
    state: Option<&StateDir>,
) -> Result<OpenedPlatform, DeployError> {
    match overrides.platform.unwrap_or(config.cutover.platform) {
        PlatformKind::Sim => {
            let scenario = match overrides.scenario.as_ref().or(config.cutover.scenario.as_ref()) {
                Some(path) => Scenario::load(path).map_err(|e| DeployError::BadInput(format!("{e:#}")))?,
                None => Scenario::default(),
            };
            let image = format!("registry.fly.io/{}:v{}", config.app, scenario.fleet.version);
            let fingerprint = scenario.fingerprint(&config.app, &image);
            let keep = state.map(|s| KeptFleet { path: s.sim_fleet(&config.app), fingerprint });
            let saved = match &keep {
                Some(k) => SavedWorld::read(&k.path)
                    .map_err(|e| DeployError::BadInput(format!("{e:#}")))?
                    .filter(|saved| saved.fingerprint == k.fingerprint),
                None => None,
            };
            let world = match saved {
                Some(saved) => {
                    tracing::info!(
                        "continuing the simulated fleet of {} ({} machine(s)) from {}",
                        config.app,
                        saved.machines_of(&config.app),
                        keep.as_ref().map(|k| k.path.display().to_string()).unwrap_or_default()
                    );
                    SimWorld::restore(scenario, saved, &config.app, config.checks.clone())
                }
                None => SimWorld::new(scenario, &config.app, &image, config.checks.clone()),
            };
            let concurrency = world.concurrency().unwrap_or(config.cutover.concurrency);
            Ok(OpenedPlatform {
                platform: Arc::new(world.platform(&config.app)),
                sim: Some(world),
                concurrency,
                keep,
                local: None,
            })
        }
        PlatformKind::Local => {
            let local = open_local(config, overrides, state).await?;
            Ok(OpenedPlatform {
                platform: local.clone(),
                sim: None,
                concurrency: config.cutover.concurrency,
                keep: None,
                local: Some(local),
            })
        }
        PlatformKind::Fly => Ok(OpenedPlatform {
            platform: Arc::new(open_fly(config, overrides)?),
            sim: None,
            concurrency: config.cutover.concurrency,
            keep: None,
            local: None,
        }),
    }
}

/// Fly's Machines API for the app: the token from `--access-token` or `FLY_API_TOKEN`, the API at
/// `FLY_FLAPS_BASE_URL`, else `[cutover.fly] api_url`, else Fly's. Nothing is sent yet.
pub fn open_fly(config: &Config, overrides: &Overrides) -> Result<FlyPlatform, DeployError> {
    use cutover_machines_api::Token;
    let token = overrides
        .access_token
        .clone()
        .or_else(|| std::env::var("FLY_API_TOKEN").ok().and_then(Token::new))
        .ok_or_else(|| {
            DeployError::BadInput(format!(
                "the fly platform needs an API token, and none is set: create a deploy token for the app \
                 with `fly tokens create deploy -a {}` and put it in FLY_API_TOKEN (or pass --access-token)",
                config.app
            ))
        })?;
    let mut opts = FlyOptions::new(token);
    if let Some(url) = std::env::var("FLY_FLAPS_BASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| config.cutover.fly.api_url.clone())
    {
        opts.api_url = url;
    }
    opts.strategy = Some(match &overrides.strategy {
        Some(s) => s.clone(),
        None => config.strategy.to_string(),
    });
    Ok(FlyPlatform::new(&config.app, opts))
}

/// The local daemon of `state` (started if needed), with the app registered on it.
pub async fn open_local(
    config: &Config,
    overrides: &Overrides,
    state: Option<&StateDir>,
) -> Result<Arc<LocalPlatform>, DeployError> {
    let local = &config.cutover.local;
    if local.command.is_empty() {
        return Err(DeployError::Config(ConfigError::Other {
            path: config.cutover_source.clone(),
            message:
                "the local platform runs your app's command, and none is set: add\n\n[cutover.local]\n  \
                      command = \"./path/to/your-app\"\n\n(it gets PORT and Fly's FLY_* variables in its \
                      environment)"
                    .into(),
        }));
    }
    let state = state.ok_or_else(|| {
        DeployError::Platform(
            "the local platform keeps its daemon in a state directory, and none was given".into(),
        )
    })?;
    let exe = overrides.cutover_exe.clone().ok_or_else(|| {
        DeployError::Platform("the local platform needs the `cutover` binary to start its daemon".into())
    })?;
    let daemon = LocalDaemon::of(state.path());
    let info = daemon.ensure_running(&exe).await.map_err(|e| DeployError::Platform(e.message))?;
    let spec = AppSpec {
        command: local.command.clone(),
        cwd: local.cwd.clone(),
        env: local.env.clone(),
        checks: config.checks.clone(),
        port: local.port,
        tcp: local.tcp,
        kill_signal: config.kill_signal.clone(),
        kill_timeout_ms: config.kill_timeout.as_millis() as u64,
    };
    let platform = LocalPlatform::connect(&info.url, &config.app, &spec).await.map_err(|e| {
        if e.kind == ErrorKind::Invalid {
            DeployError::BadInput(e.message)
        } else {
            DeployError::Platform(format!("the local daemon at {}: {}", info.url, e.message))
        }
    })?;
    Ok(Arc::new(platform))
}

/// The release most machines run (ties go to the newer one); `None` for an empty app.
pub fn current_release(machines: &[Machine]) -> Option<Release> {
    let mut counts: BTreeMap<(u64, &str), usize> = BTreeMap::new();
    for m in machines {
        *counts.entry((m.release.version, m.release.image.as_str())).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|((version, _), n)| (*n, *version))
        .map(|((version, image), _)| Release { version, image: image.to_string() })
}

/// List machines, retrying transient platform errors (the driver's own reads must not fail a deploy).
async fn list_with_retries(platform: &dyn Platform) -> Result<Vec<Machine>, DeployError> {
    cutover_core::list_with_retries(platform).await.map_err(|f| {
        let app = platform.app();
        DeployError::Platform(match f.exhausted {
            true => format!(
                "listing machines of {app} failed {} times: {}",
                cutover_core::LIST_ATTEMPTS,
                f.error
            ),
            false => format!("listing machines of {app}: {}", f.error),
        })
    })
}

/// What a run is for.
#[derive(Debug, Clone)]
pub enum Goal {
    /// A new release of `image`, numbered after every release seen so far.
    Deploy { image: String },
    /// Back to an earlier release: `to`, or the one the current release replaced.
    Rollback { to: Option<u64> },
}

/// Everything one deploy needs, resolved.
pub struct Deploy<'a> {
    pub config: &'a Config,
    pub overrides: &'a Overrides,
    pub runtime: &'a Runtime,
    pub sink: Arc<dyn EventSink>,
    /// The app's state directory (journal, kept simulator fleet); `None` keeps no record.
    pub state: Option<StateDir>,
}

/// The release a goal deploys. A new deploy gets the next version neither the journal nor the fleet
/// has seen (versions are never reused); a rollback, the release [`rollback::pick`] chooses.
pub(crate) fn target_release(
    goal: Goal,
    journal: Option<&Journal>,
    app: &str,
    machines: &[Machine],
    current: Option<&Release>,
) -> Result<Release, DeployError> {
    Ok(match goal {
        Goal::Deploy { image } => {
            let seen = match journal {
                Some(j) => j.max_version(app)?,
                None => 0,
            };
            let on_fleet = machines.iter().map(|m| m.release.version).max().unwrap_or(0);
            Release { version: seen.max(on_fleet) + 1, image }
        }
        Goal::Rollback { to } => {
            let records = match journal {
                Some(j) => j.releases(app)?,
                None => vec![],
            };
            rollback::pick(app, &records, current, to).map_err(DeployError::BadInput)?
        }
    })
}

/// Takes `cutover promote` for one release from the journal.
struct JournalGate {
    journal: Journal,
    release_id: i64,
}

#[async_trait::async_trait]
impl PromotionGate for JournalGate {
    async fn wait(&self, gate: &str, timeout: Duration) -> Result<(), cutover_core::OpError> {
        self.journal.await_promotion(self.release_id, gate, timeout).await
    }
}

impl Deploy<'_> {
    /// Deploy a new release. `Ok` carries the report for both outcomes; `Err` means the deploy never
    /// started (bad input, unreachable platform) and nothing was changed.
    pub async fn run(&self) -> Result<DeployReport, DeployError> {
        self.run_goal(Goal::Deploy { image: self.image()? }).await
    }

    /// The image to deploy: `--image`, else `[build] image`.
    pub fn image(&self) -> Result<String, DeployError> {
        self.overrides.image.clone().or_else(|| self.config.image.clone()).ok_or_else(|| {
            DeployError::BadInput(format!(
                "no image to deploy: pass `--image IMAGE` or set `image` under [build] in {}",
                self.config.path.display()
            ))
        })
    }

    /// Return the app to an earlier release with the configured strategy (which switches back to
    /// retained machines when it kept them, or deploys the earlier image).
    /// After a crash (the latest deploy interrupted), the deploy is first undone by its own strategy.
    pub async fn rollback(&self, to: Option<u64>) -> Result<DeployReport, DeployError> {
        if to.is_none()
            && let Some(report) = self.roll_back_interrupted().await?
        {
            return Ok(report);
        }
        self.run_goal(Goal::Rollback { to }).await
    }

    async fn run_goal(&self, goal: Goal) -> Result<DeployReport, DeployError> {
        let config = self.config;
        let strategy_ref = match &self.overrides.strategy {
            Some(s) => StrategyRef::parse(s, &std::env::current_dir().unwrap_or_default()),
            None => config.strategy.clone(),
        };
        let strategy = resolve_strategy(self.runtime, &strategy_ref).await?;
        let (params, warnings) = config.strategy_params(&strategy.info.params, &strategy.info.name)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let opened = open_platform(config, self.overrides, self.state.as_ref()).await?;
        self.run_on(&strategy, params, goal, opened).await
    }

    /// Run a resolved strategy on an opened platform.
    pub async fn run_on(
        &self,
        strategy: &ResolvedStrategy,
        params: BTreeMap<String, cutover_core::contract::ParamValue>,
        goal: Goal,
        opened: OpenedPlatform,
    ) -> Result<DeployReport, DeployError> {
        let config = self.config;
        let platform = opened.platform.clone();
        let clock = if opened.sim.is_some() { HostClock::simulated() } else { HostClock::real() };
        let wall = std::time::Instant::now();
        let journal = self.state.as_ref().map(StateDir::journal).transpose()?;

        let machines = list_with_retries(&*platform).await?;
        let previous = current_release(&machines);
        let rollback = matches!(goal, Goal::Rollback { .. });
        // An app with no machines yet gets its first ones created directly: there is nothing to
        // replace, so no strategy runs (as flyctl's first deploy of an app creates its machines).
        let first_launch = match (&goal, &opened.local) {
            (Goal::Deploy { .. }, Some(local)) if machines.is_empty() => Some(local.clone()),
            _ => None,
        };
        let target = target_release(goal, journal.as_ref(), &config.app, &machines, previous.as_ref())?;
        if platform.name() == "fly" && machines.is_empty() && !rollback {
            return Err(DeployError::BadInput(format!(
                "{} has no machines on Fly.io yet: cutover replaces a running fleet; launch the app first \
                 (`fly launch` or `fly deploy`), then deploy its next releases with cutover",
                config.app
            )));
        }
        let mut groups: Vec<String> = machines.iter().map(|m| m.process_group.clone()).collect();
        groups.extend(config.process_groups.iter().cloned());
        groups.sort();
        groups.dedup();

        let plan = DeployPlan {
            app: config.app.clone(),
            target: target.clone(),
            previous: previous.clone(),
            process_groups: groups,
            max_unavailable: config.max_unavailable,
            wait_timeout_ms: config.wait_timeout.as_millis() as u64,
            kill_signal: config.kill_signal.clone(),
            kill_timeout_ms: config.kill_timeout.as_millis() as u64,
            params,
        };
        // Every machine is ours before anything changes; a deploy already running is refused here.
        let leases = if first_launch.is_some() {
            lease::DeployLeases::none(platform.clone())
        } else {
            let ids: Vec<String> = machines.iter().map(|m| m.id.clone()).collect();
            lease::DeployLeases::acquire(platform.clone(), &ids, config.cutover.lease_ttl, opened.concurrency)
                .await
                .map_err(|e| DeployError::Busy(e.to_string()))?
        };
        // The release is on record before anything changes.
        let begun = match &journal {
            Some(j) => j
                .begin(&journal::NewRelease {
                    app: &config.app,
                    kind: match (rollback, &first_launch) {
                        (true, _) => journal::ReleaseKind::Rollback,
                        (false, Some(_)) => journal::ReleaseKind::Launch,
                        (false, None) => journal::ReleaseKind::Deploy,
                    },
                    target: &target,
                    previous: previous.as_ref(),
                    strategy: if first_launch.is_some() { launch::NAME } else { &strategy.info.name },
                    strategy_hash: &hex::encode(strategy.component.hash),
                    params: serde_json::to_value(&plan.params).unwrap_or_default(),
                    platform: platform.name(),
                    plan: first_launch.is_none().then_some(&plan),
                    strategy_ref: Some(&match &strategy.reference {
                        // Absolute, so `cutover resume` finds it from any folder.
                        StrategyRef::File(p) => {
                            std::fs::canonicalize(p).unwrap_or(p.clone()).display().to_string()
                        }
                        builtin => builtin.to_string(),
                    }),
                })
                .map(Some),
            None => Ok(None),
        };
        let release_id = match begun.map_err(|e| match e {
            JournalError::Busy(holder) => DeployError::Busy(holder),
            e => e.into(),
        }) {
            Ok(id) => opened.write_through().map(|()| id),
            Err(e) => Err(e),
        };
        let release_id = match release_id {
            Ok(id) => id,
            Err(e) => {
                leases.release().await;
                return Err(e);
            }
        };
        let sink: Arc<dyn EventSink> = match (&journal, release_id) {
            (Some(j), Some(id)) => Arc::new(Tee(vec![
                self.sink.clone(),
                Arc::new(journal::JournalSink { journal: j.clone(), release_id: id }),
            ])),
            _ => self.sink.clone(),
        };
        let recorder = Recorder::new(sink, clock);
        recorder.record(EventKind::DeployStarted(Box::new(DeployStart {
            app: config.app.clone(),
            platform: platform.name().to_string(),
            strategy: if first_launch.is_some() { launch::NAME.into() } else { strategy.info.name.clone() },
            target: target.clone(),
            previous: previous.clone(),
            machines: machines.len(),
            rollback,
        })));

        let promotions = match (&journal, release_id) {
            (Some(j), Some(id)) => {
                Some(Arc::new(JournalGate { journal: j.clone(), release_id: id }) as Arc<dyn PromotionGate>)
            }
            _ => None,
        };
        let error = match first_launch {
            Some(local) => launch::run(&local, config, &target, &recorder).await.err(),
            None => {
                let run = StrategyRun {
                    platform: platform.clone(),
                    concurrency: opened.concurrency,
                    clock,
                    recorder: recorder.clone(),
                    promotions,
                    replay: None,
                };
                // Without a replay nothing can stray from one.
                self.run_strategy(strategy, &plan, run).await.unwrap_or_else(|d| Some(d.to_string()))
            }
        };
        Ok(self
            .conclude(Ending {
                error,
                leases,
                platform,
                opened_sim: opened.sim,
                keep: opened.keep,
                journal,
                release_id,
                recorder,
                clock,
                wall,
                rollback,
                target,
                previous,
            })
            .await)
    }

    /// Run a strategy on `plan` in its sandbox, under this config's policy for it (seeded by the target
    /// release, so a replay gets the same randomness). `Ok`: the deploy's error if it failed; `Err`: a
    /// replayed strategy strayed from its journal, and nothing was changed.
    async fn run_strategy(
        &self,
        strategy: &ResolvedStrategy,
        plan: &DeployPlan,
        run: StrategyRun,
    ) -> Result<Option<String>, cutover_runtime::ReplayDiverged> {
        let (limits, grants) = self.config.cutover.sandbox_for(&strategy.reference);
        let ctx = RunContext {
            platform: run.platform,
            limits,
            grants,
            concurrency: run.concurrency,
            clock: run.clock,
            recorder: run.recorder,
            seed: plan.target.version,
            promotions: run.promotions,
            replay: run.replay,
        };
        match self.runtime.deploy(&strategy.component, plan, ctx).await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(e)) => Ok(Some(format!("strategy {} reported: {e}", strategy.info.name))),
            Err(RuntimeError::Diverged(d)) => Err(d),
            Err(e) => Ok(Some(e.to_string())),
        }
    }

    /// Close a deploy whose strategy has returned: give the leases back, record and journal the
    /// outcome with the fleet as it is now, and keep the simulated fleet.
    async fn conclude(&self, end: Ending) -> DeployReport {
        let Ending {
            error,
            leases,
            platform,
            opened_sim,
            keep,
            journal,
            release_id,
            recorder,
            clock,
            wall,
            rollback,
            target,
            previous,
        } = end;
        let config = self.config;
        let unreleased = leases.release().await;
        if unreleased > 0 {
            tracing::warn!(
                "{unreleased} lease(s) could not be released; they expire within {}",
                cutover_core::duration::display(config.cutover.lease_ttl)
            );
        }
        let outcome = if error.is_none() { Outcome::Succeeded } else { Outcome::Failed };
        let after = list_with_retries(&*platform).await.unwrap_or_default();
        let fleet = FleetSummary::of(&after);
        let duration = clock.elapsed();
        recorder.record(EventKind::DeployFinished {
            outcome,
            error: error.clone(),
            duration_ms: duration.as_millis() as u64,
            fleet: fleet.clone(),
        });
        if let (Some(world), Some(keep)) = (&opened_sim, &keep)
            && let Err(e) = world.save(&keep.fingerprint).write(&keep.path)
        {
            tracing::error!("the simulated fleet was not kept for the next run: {e:#}");
        }
        if let (Some(j), Some(id)) = (&journal, release_id)
            && let Err(e) = j.finish(id, error.is_none(), error.as_deref(), duration)
        {
            tracing::error!("the outcome of release #{id} was not journaled: {e}");
        }
        DeployReport {
            outcome,
            rollback,
            release_id,
            error,
            target,
            previous,
            fleet,
            duration,
            wall: wall.elapsed(),
        }
    }
}

/// Where and how [`Deploy::run_strategy`] runs a strategy.
struct StrategyRun {
    platform: Arc<dyn Platform>,
    concurrency: usize,
    clock: HostClock,
    recorder: Recorder,
    promotions: Option<Arc<dyn PromotionGate>>,
    replay: Option<Arc<cutover_runtime::Replay>>,
}

/// What [`Deploy::conclude`] needs of a deploy whose strategy has returned.
struct Ending {
    /// The strategy's or the sandbox's error, if it failed.
    error: Option<String>,
    leases: lease::DeployLeases,
    platform: Arc<dyn Platform>,
    opened_sim: Option<Arc<SimWorld>>,
    keep: Option<KeptFleet>,
    journal: Option<Journal>,
    release_id: Option<i64>,
    recorder: Recorder,
    clock: HostClock,
    wall: std::time::Instant,
    rollback: bool,
    target: Release,
    previous: Option<Release>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::MachineState;

    fn m(version: u64, image: &str) -> Machine {
        Machine {
            id: String::new(),
            name: String::new(),
            region: "ams".into(),
            process_group: "app".into(),
            state: MachineState::Started,
            release: Release { version, image: image.into() },
            cordoned: false,
            checks: vec![],
            volumes: vec![],
            metadata: vec![],
        }
    }

    #[test]
    fn current_release_is_the_majority() {
        let ms = vec![m(1, "a"), m(2, "b"), m(2, "b")];
        assert_eq!(current_release(&ms), Some(Release { version: 2, image: "b".into() }));
        assert_eq!(current_release(&[]), None);
    }
}
