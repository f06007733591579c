//! Platforms: where machines actually live.
//!
//! Every platform (the in-process simulator, the local process runner, Fly.io) implements [`Platform`],
//! one machine at a time. Batching, concurrency bounds and event recording are the runtime's job
//! (see `runtime::dispatch`), so a platform stays a thin adapter over its API and every platform gets
//! the same concurrency behaviour for free.
//!
//! The types here are the platform layer's own: the one `Machine`, `Release` and `OpError` the rest of
//! the host speaks. The WIT bindings convert to and from them at the component boundary.

pub mod fly;
pub mod local;
pub mod machines_api;
pub mod sim;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A release: what a machine runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Release {
    pub version: u64,
    pub image: String,
}

/// Life-cycle states, named as the Fly Machines API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Suspended,
    Failed,
    Replacing,
    Destroying,
    Destroyed,
}

impl MachineState {
    /// The API's spelling ("started", "stopped", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Suspended => "suspended",
            Self::Failed => "failed",
            Self::Replacing => "replacing",
            Self::Destroying => "destroying",
            Self::Destroyed => "destroyed",
        }
    }
}

/// A health check's verdict; only `Passing` is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passing,
    Warning,
    Critical,
}

/// One check of one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub output: String,
}

/// A machine as a platform reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub id: String,
    pub name: String,
    pub region: String,
    pub process_group: String,
    pub state: MachineState,
    pub release: Release,
    pub cordoned: bool,
    pub checks: Vec<Check>,
    /// Names of attached volumes.
    pub volumes: Vec<String>,
    pub metadata: Vec<(String, String)>,
}

impl Machine {
    /// Started, routable and every check passing: this machine is serving.
    pub fn is_serving(&self) -> bool {
        self.state == MachineState::Started
            && !self.cordoned
            && self.checks.iter().all(|c| c.status == CheckStatus::Passing)
    }
}

/// What a platform's traffic layer supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Capabilities {
    pub cordon: bool,
    pub connection_counts: bool,
    pub weights: bool,
    pub stats: bool,
}

/// Share of new connections for one release, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseWeight {
    pub version: u64,
    pub percent: u8,
}

/// Request statistics of one release over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct TrafficStats {
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The kinds of failure a strategy can tell apart (mirrors the WIT `error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Timeout,
    Unhealthy,
    Platform,
    Denied,
    Invalid,
    Unsupported,
}

/// Why one platform operation failed. This is also what a strategy receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", kind_label(*kind))]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
}

fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Timeout => "timed out",
        ErrorKind::Unhealthy => "unhealthy",
        ErrorKind::Platform => "platform error",
        ErrorKind::Denied => "denied",
        ErrorKind::Invalid => "invalid",
        ErrorKind::Unsupported => "unsupported",
    }
}

impl OpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn unsupported(what: &str, platform: &str) -> Self {
        Self::new(ErrorKind::Unsupported, format!("the {platform} platform cannot {what}"))
    }
}

/// A lease on a machine, as the Machines API describes it (nonce, owner, `expires_at`).
pub type Lease = machines_api::LeaseData;

/// How to stop a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSpec {
    pub signal: String,
    pub timeout: Duration,
}

/// A machines platform, scoped to one app: ids of any other app are `NotFound`.
///
/// Operations act on one machine; the runtime fans batches out concurrently. Every method may be called
/// concurrently from many tasks.
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

#[async_trait]
pub trait Platform: Send + Sync {
    /// Short name for messages ("sim", "local", "fly").
    fn name(&self) -> &str;

    /// The app this handle is scoped to.
    fn app(&self) -> &str;

    /// What the traffic layer can do.
    fn capabilities(&self) -> Capabilities;

    async fn list(&self) -> Result<Vec<Machine>, OpError>;
    async fn get(&self, id: &str) -> Result<Machine, OpError>;
    /// Create a machine like `source` on `target` and start it; cordoned unless `routable`.
    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError>;
    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError>;
    async fn start(&self, id: &str) -> Result<(), OpError>;
    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError>;
    async fn destroy(&self, id: &str) -> Result<(), OpError>;
    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError>;
    async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError>;
    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError>;
    async fn checks(&self, id: &str) -> Result<Vec<Check>, OpError> {
        Ok(self.get(id).await?.checks)
    }

    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        let _ = id;
        Err(OpError::unsupported("cordon machines", self.name()))
    }
    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        let _ = id;
        Err(OpError::unsupported("uncordon machines", self.name()))
    }
    async fn connections(&self, id: &str) -> Result<u32, OpError> {
        let _ = id;
        Err(OpError::unsupported("count connections", self.name()))
    }
    async fn set_weights(&self, weights: &[ReleaseWeight]) -> Result<(), OpError> {
        let _ = weights;
        Err(OpError::unsupported("split traffic by weight", self.name()))
    }
    async fn weights(&self) -> Result<Vec<ReleaseWeight>, OpError> {
        Err(OpError::unsupported("split traffic by weight", self.name()))
    }
    async fn stats(&self, version: u64, window: Duration) -> Result<TrafficStats, OpError> {
        let _ = (version, window);
        Err(OpError::unsupported("report traffic statistics", self.name()))
    }
    /// Whether machines can be leased (Fly and the local daemon; the simulator has one writer). The
    /// deploy driver leases every machine of a deploy before its first change (`driver::lease`).
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
}

/// A health check as configured in fly.toml, in the form platforms run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    /// Time after start before failures count.
    pub grace_period: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    /// The app's internal port the check targets, when the config names one.
    pub port: Option<u16>,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckKind {
    Http {
        method: String,
        path: String,
        protocol: String,
        headers: Vec<(String, String)>,
        tls_skip_verify: bool,
    },
    Tcp,
}
