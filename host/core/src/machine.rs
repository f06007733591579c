//! Machines as every layer of the host speaks of them: what a machine runs (a [`Release`]), its
//! life-cycle state, its health checks, and how to stop it. The WIT bindings and each platform's API
//! shapes convert to and from these at their boundary.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A release: what a machine runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Release {
    /// Monotonic release number of the app (1, 2, 3, ...): how strategies, weights and statistics
    /// tell releases apart.
    pub version: u64,
    /// Image reference, e.g. `registry.fly.io/app:deployment-01H...`.
    pub image: String,
}

/// Life-cycle states, named as the Fly Machines API names them. The other platforms map their own
/// states onto these, so a strategy waits for the same states everywhere. `starting`, `stopping`,
/// `replacing` and `destroying` are transient: the machine moves on by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    /// Created but never started yet.
    Created,
    /// On its way from created or stopped to started.
    Starting,
    /// Running and reachable over the network; the only state in which a machine serves.
    Started,
    /// On its way from started to stopped (its process has been signalled).
    Stopping,
    /// Exited, on its own or because it was stopped; keeps its configuration and can start again.
    Stopped,
    /// Suspended to disk; starting it resumes where it left off.
    Suspended,
    /// Could not start. A wait for `started` ends at once with `unhealthy` when a machine enters it.
    Failed,
    /// Its configuration (image, size, ...) is being changed by an update.
    Replacing,
    /// Being removed for good.
    Destroying,
    /// Gone; `machines.list` no longer shows it.
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
    /// The check succeeds.
    Passing,
    /// Not failing outright, yet not passing either (and so not healthy).
    Warning,
    /// The check fails.
    Critical,
}

/// One check of one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The check's name, as the platform reports it.
    pub name: String,
    /// Its verdict now.
    pub status: CheckStatus,
    /// The check's last output (HTTP status and body excerpt, or connection error).
    pub output: String,
}

/// A machine as a platform reports it, at the moment it was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The platform's id (e.g. a Fly Machine id such as `148ed193b95998`); what every call names.
    pub id: String,
    /// Its human-readable name, for messages; calls name machines by `id`.
    pub name: String,
    /// Where it runs (a Fly region such as `ams`; a label on the other platforms).
    pub region: String,
    /// Process group (`[processes]` in fly.toml); `app` when there is only one.
    pub process_group: String,
    /// Its life-cycle state.
    pub state: MachineState,
    /// The release this machine runs (or will run once started).
    pub release: Release,
    /// A cordoned machine takes no new connections; existing ones continue.
    pub cordoned: bool,
    /// Its health checks, with their current verdicts.
    pub checks: Vec<Check>,
    /// Names of attached volumes. A volume attaches to one machine only, so a machine with volumes
    /// cannot be cloned onto the same data.
    pub volumes: Vec<String>,
    /// Free-form key/value metadata (see `machines.set-metadata`).
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

/// How to stop a machine: the arguments of `machines.stop`, for one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSpec {
    /// The signal sent first, by name (e.g. "SIGINT", fly.toml's `kill_signal`).
    pub signal: String,
    /// How long the machine has to exit after the signal before it is killed.
    pub timeout: Duration,
}

/// A health check as configured in fly.toml, in the form platforms run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// Where in fly.toml it is declared (`http_service.checks[0]`) or the name `[checks.NAME]` gives it.
    pub name: String,
    /// What the check does.
    pub kind: CheckKind,
    /// Time after start before failures count.
    pub grace_period: Duration,
    /// Time between two runs of the check.
    pub interval: Duration,
    /// How long one run may take before it counts as failed.
    pub timeout: Duration,
    /// The app's internal port the check targets, when the config names one.
    pub port: Option<u16>,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP request to the check's port; a success (or redirect) answer passes.
    Http {
        /// The request method, upper case ("GET").
        method: String,
        /// The request path ("/healthz").
        path: String,
        /// "http" or "https", as fly.toml gives it (default "http").
        protocol: String,
        /// Headers sent with the request.
        headers: Vec<(String, String)>,
        /// Whether an https check accepts a certificate it cannot verify.
        tls_skip_verify: bool,
    },
    /// A TCP connection to the check's port; it passes once the connection is accepted.
    Tcp,
}
