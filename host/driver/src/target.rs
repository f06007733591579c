//! Where a command runs, decided once.
//!
//! A command's platform comes from its flags, the config and, after a crash, the journal: `cutover
//! resume` and `cutover rollback` go back to the platform the interrupted deploy ran on, and `cutover
//! status` looks where the latest release ran. [`Target::resolve`] is the only place that weighs
//! these; everything after it (the CLI choosing its clock, the driver opening the platform) asks the
//! resolved [`Target`]. What differs between platforms beyond opening them (a first launch, keeping the
//! simulated fleet) is a method of the platform itself.

use crate::{DeployError, StateDir};
use cutover_config::{Config, ConfigError, PlatformKind};
use cutover_core::metrics::MetricsSource;
use cutover_core::{ErrorKind, OpError, Platform};
use cutover_fly::{FlyOptions, FlyPlatform};
use cutover_journal::{ReleaseRecord, ReleaseStatus};
use cutover_local::daemon::fleet::AppSpec;
use cutover_local::{LocalDaemon, LocalPlatform};
use cutover_machines_api::Token;
use cutover_runtime::HostClock;
use cutover_sim::{KeptFleet, Scenario, ScenarioMetrics, SimPlatform};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the command line says about where to run (each `None` defers to the config).
#[derive(Debug, Clone, Default)]
pub struct PlatformFlags {
    /// `--platform`.
    pub platform: Option<PlatformKind>,
    /// `--scenario`: the simulator's scenario file.
    pub scenario: Option<PathBuf>,
    /// `--access-token` (else `FLY_API_TOKEN`): the Fly API token. Its `Debug` is redacted.
    pub access_token: Option<Token>,
    /// The `cutover` binary, which the local platform runs as its daemon (`cutover local serve`).
    pub cutover_exe: Option<PathBuf>,
}

/// What a command is for, which decides where it runs when the flags do not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new release (also `--dry-run`): the flags, else the config.
    Deploy,
    /// `cutover rollback --to VERSION`: as a deploy.
    RollbackTo,
    /// `cutover rollback` without `--to`: after a crash, where the interrupted deploy ran.
    Rollback,
    /// `cutover resume`: where the latest release ran (the interrupted deploy, or the one whose
    /// leftovers it finishes).
    Resume,
    /// `cutover status`: the flags, else where the latest release ran, else the config.
    Status,
    /// `cutover demo` and the local daemon's commands: always the local platform.
    Local,
}

/// The platform a command runs on, with what opening it takes.
#[derive(Debug, Clone)]
pub struct Target {
    kind: PlatformKind,
    /// The simulator's scenario file (`--scenario`, else `[cutover.sim] scenario`); `None`: the default.
    scenario: Option<PathBuf>,
    state: Option<StateDir>,
    access_token: Option<Token>,
    cutover_exe: Option<PathBuf>,
}

/// A platform opened for a command, and how many of its machines may change at once.
pub struct OpenedPlatform {
    /// The app's machines.
    pub platform: Arc<dyn Platform>,
    /// The concurrency bound of batch calls (the config's, or the simulator scenario's override).
    pub concurrency: usize,
    /// Who answers a strategy's metrics queries: the simulator's scenario series when it has any, else
    /// the `[cutover.metrics]` server; `None`: the queries are `unsupported`.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

impl Target {
    /// Decide where a command for `purpose` runs. With a state directory, the journal's record of the
    /// latest release counts too (see [`Purpose`]); without one, only the flags and the config do.
    pub fn resolve(config: &Config, flags: PlatformFlags, state: Option<StateDir>, purpose: Purpose) -> Self {
        let latest = || state.as_ref().and_then(|s| latest_release(s, &config.app));
        let interrupted = || {
            latest()
                .filter(|r| r.status == ReleaseStatus::Interrupted)
                .and_then(|r| PlatformKind::from_name(&r.platform))
        };
        let kind = match purpose {
            Purpose::Local => Some(PlatformKind::Local),
            Purpose::Deploy | Purpose::RollbackTo => flags.platform,
            Purpose::Rollback => interrupted().or(flags.platform),
            // Resume takes up an interrupted deploy, or finishes the leftovers of the latest one: both
            // where that deploy ran.
            Purpose::Resume => latest().and_then(|r| PlatformKind::from_name(&r.platform)).or(flags.platform),
            Purpose::Status => {
                flags.platform.or_else(|| latest().and_then(|r| PlatformKind::from_name(&r.platform)))
            }
        }
        .unwrap_or(config.cutover.platform);
        let scenario = flags.scenario.or_else(|| config.cutover.scenario.clone());
        Self { kind, scenario, state, access_token: flags.access_token, cutover_exe: flags.cutover_exe }
    }

    /// Which platform.
    pub fn kind(&self) -> PlatformKind {
        self.kind
    }

    /// Whether the platform runs on virtual time: the simulator, whose tokio runtime must be a
    /// current-thread one with time paused (the CLI builds it accordingly).
    pub fn virtual_time(&self) -> bool {
        self.kind == PlatformKind::Sim
    }

    /// The clock a deploy on this platform runs on.
    pub fn host_clock(&self) -> HostClock {
        if self.virtual_time() { HostClock::simulated() } else { HostClock::real() }
    }

    /// The app's state directory, if the command keeps one.
    pub fn state(&self) -> Option<&StateDir> {
        self.state.as_ref()
    }

    /// The state directory, which the local platform's daemon lives in.
    pub(crate) fn state_dir(&self) -> Result<&StateDir, DeployError> {
        self.state.as_ref().ok_or_else(|| {
            DeployError::Setup(
                "the local platform keeps its daemon in a state directory, and none was given".into(),
            )
        })
    }

    /// The `cutover` binary, which the local platform starts as its daemon.
    pub(crate) fn cutover_exe(&self) -> Result<&Path, DeployError> {
        self.cutover_exe.as_deref().ok_or_else(|| {
            DeployError::Setup("the local platform needs the `cutover` binary to start its daemon".into())
        })
    }

    /// Open the platform for a command that may change the fleet: the simulator continues from the
    /// fleet the last run kept in the state directory; the local platform's daemon is started if
    /// needed and the app registered on it; Fly is reached with the token. Nothing is changed yet.
    pub async fn open(&self, config: &Config) -> Result<OpenedPlatform, DeployError> {
        let concurrency = config.cutover.concurrency;
        match self.kind {
            PlatformKind::Sim => {
                let scenario = self.scenario()?;
                let concurrency = scenario.concurrency.unwrap_or(concurrency);
                let scenario_metrics = scenario.metrics.clone();
                let platform: Arc<dyn Platform> = match &self.state {
                    Some(state) => Arc::new(
                        SimPlatform::open_kept(
                            scenario,
                            &config.app,
                            config.checks.clone(),
                            KeptFleet { path: state.sim_fleet(&config.app) },
                        )
                        .map_err(DeployError::Simulator)?,
                    ),
                    None => {
                        let image = format!("registry.fly.io/{}:v{}", config.app, scenario.fleet.version);
                        Arc::new(
                            cutover_sim::SimWorld::new(scenario, &config.app, &image, config.checks.clone())
                                .platform(&config.app),
                        )
                    }
                };
                let metrics = match scenario_metrics.is_empty() {
                    false => Some(Arc::new(ScenarioMetrics::new(scenario_metrics)) as Arc<dyn MetricsSource>),
                    true => configured_metrics(config)?,
                };
                Ok(OpenedPlatform { platform, concurrency, metrics })
            }
            PlatformKind::Local => {
                let metrics = configured_metrics(config)?;
                Ok(OpenedPlatform { platform: self.open_local(config).await?, concurrency, metrics })
            }
            PlatformKind::Fly => {
                let metrics = configured_metrics(config)?;
                Ok(OpenedPlatform { platform: Arc::new(self.open_fly(config)?), concurrency, metrics })
            }
        }
    }

    /// Open the platform for a command that only reads (`status`, `--dry-run`): as [`Target::open`],
    /// except that the local platform is only attached to a daemon already running (starting one, or
    /// registering the app, would be a change). `Ok(None)`: no local daemon runs, so the app has no
    /// machines there (they stop with it).
    pub async fn open_to_read(&self, config: &Config) -> Result<Option<OpenedPlatform>, DeployError> {
        if self.kind != PlatformKind::Local {
            return self.open(config).await.map(Some);
        }
        let daemon = match &self.state {
            Some(s) => LocalDaemon::of(s.path()).running().await,
            None => None,
        };
        Ok(daemon.map(|info| OpenedPlatform {
            platform: Arc::new(LocalPlatform::attach(&info, &config.app)),
            concurrency: config.cutover.concurrency,
            metrics: None,
        }))
    }

    /// The simulator's scenario: the target's file, else the default scenario.
    fn scenario(&self) -> Result<Scenario, DeployError> {
        match &self.scenario {
            Some(path) => Scenario::load(path).map_err(DeployError::Simulator),
            None => Ok(Scenario::default()),
        }
    }

    /// Fly's Machines API for the app: the token from `--access-token` or `FLY_API_TOKEN`, the API at
    /// `FLY_FLAPS_BASE_URL`, else `[cutover.fly] api_url`, else Fly's. Nothing is sent yet.
    pub fn open_fly(&self, config: &Config) -> Result<FlyPlatform, DeployError> {
        let token = self
            .access_token
            .clone()
            .or_else(|| std::env::var("FLY_API_TOKEN").ok().and_then(Token::new))
            .ok_or_else(|| DeployError::NoToken { app: config.app.clone() })?;
        let mut opts = FlyOptions::new(token);
        if let Some(url) = std::env::var("FLY_FLAPS_BASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| config.cutover.fly.api_url.clone())
        {
            opts.api_url = url;
        }
        opts.strategy = Some(config.strategy.to_string());
        Ok(FlyPlatform::new(&config.app, opts))
    }

    /// The local daemon of the state directory (started if needed), with the app registered on it.
    pub async fn open_local(&self, config: &Config) -> Result<Arc<LocalPlatform>, DeployError> {
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
        let daemon = LocalDaemon::of(self.state_dir()?.path());
        let info = daemon.ensure_running(self.cutover_exe()?).await.map_err(DeployError::platform)?;
        let spec = AppSpec {
            command: local.command.clone(),
            cwd: local.cwd.clone(),
            env: local.env.clone(),
            checks: config.checks.clone(),
            port: local.port,
            tcp: local.tcp,
            proxy: local.proxy,
            kill_signal: config.kill_signal.clone(),
            kill_timeout_ms: config.kill_timeout.as_millis() as u64,
        };
        let platform = LocalPlatform::connect(&info, &config.app, &spec).await.map_err(|e| {
            if e.kind == ErrorKind::Invalid {
                DeployError::platform(e)
            } else {
                DeployError::platform(OpError::new(
                    e.kind,
                    format!("the local daemon at {}: {}", info.url, e.message),
                ))
            }
        })?;
        Ok(Arc::new(platform))
    }
}

/// The latest release in `state`'s journal, without creating a journal where there is none.
pub(crate) fn latest_release(state: &StateDir, app: &str) -> Option<ReleaseRecord> {
    if !state.has_journal() {
        return None;
    }
    state.journal().ok()?.releases(app).ok()?.pop()
}

/// The `[cutover.metrics]` server, if the config names one.
fn configured_metrics(config: &Config) -> Result<Option<Arc<dyn MetricsSource>>, DeployError> {
    let Some(m) = &config.cutover.metrics else { return Ok(None) };
    let source = crate::prometheus::PrometheusSource::new(m).map_err(DeployError::Setup)?;
    Ok(Some(Arc::new(source)))
}
