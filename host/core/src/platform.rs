//! Platforms: where machines actually live.
//!
//! Every platform (the in-process simulator, the local process runner, Fly.io) implements [`Platform`],
//! one machine at a time. Batching, concurrency bounds and event recording are the runtime's job
//! (see `cutover_runtime::dispatch`), so a platform stays a thin adapter over its API and every platform gets
//! the same concurrency behaviour for free.
//!
//! The implementations live in crates of their own (`cutover-sim`, `cutover-local`, `cutover-fly`);
//! this trait is all the runtime and the driver know of them.

use crate::error::{ErrorKind, OpError};
use crate::machine::{Check, Machine, MachineState, Release, StopSpec};
use crate::release_command::{ReleaseCommand, ReleaseCommandError, ReleaseLog};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a platform's traffic layer supports (the contract's `traffic-capabilities`). A strategy asks
/// before it relies on one; the calls a platform cannot do return `Unsupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Capabilities {
    /// `traffic.cordon` and `traffic.uncordon` work.
    pub cordon: bool,
    /// `traffic.connections` works.
    pub connection_counts: bool,
    /// `traffic.set-weights` and `traffic.weights` work.
    pub weights: bool,
    /// `traffic.stats` works.
    pub stats: bool,
}

/// Share of new connections for one release, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseWeight {
    /// The release's version.
    pub version: u64,
    /// Its share of new connections, 0 to 100.
    pub percent: u8,
}

/// Whether the split `weights` gives `version` no share of new connections: weights are set (empty:
/// by machine count) and the release is at 0% or not listed. The simulator drains such a release and
/// `cutover report` draws it out of rotation. (A proxy still routes to it when no release with a
/// share has a machine to serve; neither counts that moment.)
pub fn weighted_out(weights: &[ReleaseWeight], version: u64) -> bool {
    !weights.is_empty() && weights.iter().all(|w| w.version != version || w.percent == 0)
}

/// Request statistics of one release over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct TrafficStats {
    /// Requests in the window.
    pub requests: u64,
    /// 5xx responses and failed connections.
    pub errors: u64,
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency, in milliseconds.
    pub p99_ms: f64,
}

/// A lease on a machine, as the Machines API describes it (the `data` of a lease answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// What every mutating call on the leased machine must carry.
    pub nonce: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Who holds it.
    #[serde(default)]
    pub owner: String,
    /// The lease's version, as the API numbers it.
    #[serde(default)]
    pub version: String,
}

/// How many times [`list_with_retries`] asks before it gives up on transient errors.
pub const LIST_ATTEMPTS: u32 = 5;

/// Why [`list_with_retries`] gave up.
pub struct ListFailed {
    /// The last error.
    pub error: OpError,
    /// Whether every attempt failed on a transient error (as opposed to a first, lasting one).
    pub exhausted: bool,
}

/// List machines, retrying transient errors (`Platform`, `Timeout`) with backoff: for the host's own
/// reads (a deploy's before and after, a resume's reconcile), which must not fail on one lost answer.
pub async fn list_with_retries(platform: &dyn Platform) -> Result<Vec<Machine>, ListFailed> {
    let mut last = None;
    for attempt in 0..LIST_ATTEMPTS {
        match platform.list().await {
            Ok(ms) => return Ok(ms),
            Err(e) if matches!(e.kind, ErrorKind::Platform | ErrorKind::Timeout) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err(error) => return Err(ListFailed { error, exhausted: false }),
        }
    }
    let error = last.unwrap_or_else(|| OpError::new(ErrorKind::Platform, "listing machines failed"));
    Err(ListFailed { error, exhausted: true })
}

/// A machines platform, scoped to one app: ids of any other app are `NotFound`.
///
/// Operations act on one machine; the runtime fans batches out concurrently. Every method may be called
/// concurrently from many tasks.
#[async_trait]
pub trait Platform: Send + Sync {
    /// Short name for messages ("sim", "local", "fly").
    fn name(&self) -> &str;

    /// The app this handle is scoped to.
    fn app(&self) -> &str;

    /// What the traffic layer can do.
    fn capabilities(&self) -> Capabilities;

    /// All machines of the app (every process group, every region, every state but destroyed)
    /// (`machines.list`).
    async fn list(&self) -> Result<Vec<Machine>, OpError>;
    /// One machine (`machines.get`).
    async fn get(&self, id: &str) -> Result<Machine, OpError>;
    /// Create a machine like `source` on `target` and start it; cordoned unless `routable`.
    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError>;
    /// Move a machine to `target` in place (`machines.update`): a started machine is stopped, replaced
    /// and started again; a stopped one is updated and stays stopped (as flyctl does). Returns once the
    /// platform has accepted the update, not once the machine is up again.
    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError>;
    /// Start a stopped machine (`machines.start`).
    async fn start(&self, id: &str) -> Result<(), OpError>;
    /// Stop a machine (`machines.stop`): send `how.signal`, wait up to `how.timeout`, then kill.
    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError>;
    /// Destroy a machine, killing it if it still runs (`machines.destroy`). A machine already
    /// destroyed is not an error.
    async fn destroy(&self, id: &str) -> Result<(), OpError>;
    /// Wait until a machine is in `state`, or `timeout` passes (`Timeout`) (`machines.wait-state`). A
    /// machine that enters `failed` while waited on for `started` ends the wait at once with
    /// `Unhealthy`. The runtime passes what is left of the whole call's deadline.
    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError>;
    /// Set one metadata key on a machine (`machines.set-metadata`).
    async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError>;
    /// Wait until every check of a machine is passing (`health.wait-healthy`): `Unhealthy` once its
    /// checks have been failing past their grace period, `Timeout` after `timeout`. A machine without
    /// checks passes as soon as it is started.
    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError>;
    /// A machine's current checks (`health.checks`). By default read from [`Platform::get`]; a
    /// platform with a cheaper way may override it.
    async fn checks(&self, id: &str) -> Result<Vec<Check>, OpError> {
        Ok(self.get(id).await?.checks)
    }

    /// Take a machine out of rotation: no new connections, existing ones continue (`traffic.cordon`).
    /// By default `Unsupported`; a platform that overrides it says so in [`Capabilities::cordon`].
    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        let _ = id;
        Err(OpError::unsupported("cordon machines", self.name()))
    }
    /// Put a machine (back) into rotation (`traffic.uncordon`). By default `Unsupported`, like
    /// [`Platform::cordon`].
    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        let _ = id;
        Err(OpError::unsupported("uncordon machines", self.name()))
    }
    /// Open connections to a machine right now (`traffic.connections`). By default `Unsupported`
    /// ([`Capabilities::connection_counts`]).
    async fn connections(&self, id: &str) -> Result<u32, OpError> {
        let _ = id;
        Err(OpError::unsupported("count connections", self.name()))
    }
    /// Whether [`Platform::connections_of`] counts many machines in one request (one round trip
    /// however many): then a drain polls its machines together, where one call each would queue
    /// thousands of round trips behind the stops and destroys of the machines already idle.
    fn counts_together(&self) -> bool {
        false
    }
    /// Open connections of each of `ids`, in order: in one request where
    /// [`Platform::counts_together`], by default one machine after the other. `Err` when the request
    /// as a whole failed.
    async fn connections_of(&self, ids: &[String]) -> Result<Vec<Result<u32, OpError>>, OpError> {
        Ok(connections_one_by_one(self, ids).await)
    }
    /// Split new connections between releases (`traffic.set-weights`). The runtime has checked the
    /// percentages add up to 100; an empty list goes back to splitting by machine count. By default
    /// `Unsupported` ([`Capabilities::weights`]).
    async fn set_weights(&self, weights: &[ReleaseWeight]) -> Result<(), OpError> {
        let _ = weights;
        Err(OpError::unsupported("split traffic by weight", self.name()))
    }
    /// The current split; empty means by machine count (`traffic.weights`). By default `Unsupported`
    /// ([`Capabilities::weights`]).
    async fn weights(&self) -> Result<Vec<ReleaseWeight>, OpError> {
        Err(OpError::unsupported("split traffic by weight", self.name()))
    }
    /// Requests, errors and latency of release `version` over the last `window` (`traffic.stats`).
    /// By default `Unsupported` ([`Capabilities::stats`]).
    async fn stats(&self, version: u64, window: Duration) -> Result<TrafficStats, OpError> {
        let _ = (version, window);
        Err(OpError::unsupported("report traffic statistics", self.name()))
    }
    /// Whether machines can be leased (Fly and the local daemon; the simulator has one writer). The
    /// deploy driver leases every machine of a deploy before its first change (`cutover_driver::lease`).
    fn has_leases(&self) -> bool {
        false
    }
    /// Lease a machine for `ttl`; from then on every mutating call on it carries the lease's nonce.
    /// A lease held by someone else is a `Conflict` that names its owner and expiry.
    async fn acquire_lease(&self, id: &str, ttl: Duration) -> Result<Lease, OpError> {
        let _ = (id, ttl);
        Err(OpError::unsupported("lease machines", self.name()))
    }
    /// Extend our lease on a machine by its TTL.
    async fn refresh_lease(&self, id: &str) -> Result<Lease, OpError> {
        let _ = id;
        Err(OpError::unsupported("lease machines", self.name()))
    }
    /// Give our lease on a machine back (a machine that is gone has none).
    async fn release_lease(&self, id: &str) -> Result<(), OpError> {
        let _ = id;
        Ok(())
    }
    /// Ids of the machines we hold leases on, including machines created while we held leases.
    fn held_leases(&self) -> Vec<String> {
        vec![]
    }
    /// Wait until an operator promotes the manual gate `gate` (`cutover promote`), or `timeout` passes.
    async fn await_promotion(&self, gate: &str, timeout: Duration) -> Result<(), OpError> {
        let _ = timeout;
        Err(OpError::new(
            ErrorKind::Unsupported,
            format!("manual gate `{gate}`: the {} platform has no promotion channel yet", self.name()),
        ))
    }

    /// Run the release command on `cmd.release` (its image, its environment and `RELEASE_COMMAND=1`),
    /// once, streaming its output to `log`, and stop it after `cmd.timeout`. `Ok` only for exit code 0.
    /// Changes no machine of the app. By default the platform cannot (`Platform`).
    async fn run_release_command(
        &self,
        cmd: &ReleaseCommand,
        log: &dyn ReleaseLog,
    ) -> Result<(), ReleaseCommandError> {
        let _ = (cmd, log);
        Err(ReleaseCommandError::Platform(OpError::unsupported("run a release command", self.name())))
    }

    /// What a deploy does when the app has no machines yet: a strategy replaces machines, so it has
    /// nothing to work on (see [`EmptyApp`]).
    fn empty_app(&self) -> EmptyApp {
        EmptyApp::RunStrategy
    }
    /// Create an app's first machines (when [`Platform::empty_app`] says [`EmptyApp::Launch`]), wait
    /// until each is started and passing its checks, and on any failure destroy what was made, so a
    /// failed launch leaves the app as empty as it found it. The error says what failed and what is left.
    async fn launch(&self, plan: &LaunchPlan, log: &dyn LaunchLog) -> Result<(), OpError> {
        let _ = (plan, log);
        Err(OpError::unsupported("launch an app's first machines", self.name()))
    }
    /// A run is about to change the fleet. A platform whose fleet lives in this process (the
    /// simulator) keeps it on disk from here on, change by change, as a real platform keeps its state
    /// whatever happens to its client; commands that only read never call this.
    fn begin_changes(&self) -> Result<(), OpError> {
        Ok(())
    }
    /// The run is over: keep what the next run starts from (the simulator's fleet).
    fn end_run(&self) -> Result<(), OpError> {
        Ok(())
    }
    /// Something a reader of this platform's fleet should know about where it came from (the
    /// simulator's fleet may be its scenario's starting one rather than one a deploy left).
    fn fleet_note(&self) -> Option<String> {
        None
    }
}

/// What a deploy does for an app with no machines yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmptyApp {
    /// Run the strategy on the empty fleet (the simulator, whose scenarios may start empty).
    RunStrategy,
    /// Create the first machines with [`Platform::launch`], as `fly launch` would; no strategy runs.
    Launch,
    /// Refuse to deploy; the message says what to do instead (Fly: launch the app with flyctl).
    Refuse(String),
}

/// An app's first machines: `per_group` machines in each process group, spread over `regions`.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    /// The app being launched.
    pub app: String,
    /// What the machines run.
    pub release: Release,
    /// The app's process groups.
    pub groups: Vec<String>,
    /// Machines to create in each group.
    pub per_group: usize,
    /// Region labels, used in turn.
    pub regions: Vec<String>,
    /// How long each machine may take to start and pass its checks.
    pub wait_timeout: Duration,
}

impl LaunchPlan {
    /// The machines to create, as (region, process group), regions taken in turn within each group.
    pub fn machines(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for group in &self.groups {
            for i in 0..self.per_group {
                let region = self.regions.get(i % self.regions.len().max(1)).cloned().unwrap_or_default();
                out.push((region, group.clone()));
            }
        }
        out
    }
}

/// What a launch tells the deploy's log as it goes (the driver records it as the launch's events).
pub trait LaunchLog: Send + Sync {
    /// A phase of the launch begins.
    fn phase(&self, name: &str);
    /// A line for the deploy's log.
    fn info(&self, message: String);
    /// `done` of `total` machines are up.
    fn progress(&self, done: u32, total: u32);
}

/// Open connections of each of `ids`, one [`Platform::connections`] call after the other: what
/// [`Platform::connections_of`] does where a platform cannot count many machines in one request.
pub async fn connections_one_by_one<P: Platform + ?Sized>(
    p: &P,
    ids: &[String],
) -> Vec<Result<u32, OpError>> {
    let mut counts = Vec::with_capacity(ids.len());
    for id in ids {
        counts.push(p.connections(id).await);
    }
    counts
}
