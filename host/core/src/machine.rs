//! Machines as every layer of the host speaks of them: what a machine runs (a [`Release`]), its
//! life-cycle state, its health checks, and how to stop it. The WIT bindings and each platform's API
//! shapes convert to and from these at their boundary.

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

/// How to stop a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSpec {
    pub signal: String,
    pub timeout: Duration,
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
