//! The Machines API's JSON shapes, and how they read as the platform layer's types.
//!
//! Shapes follow the Machines API documentation and superfly/fly-go's `machine_types.go`; fields
//! cutover does not use are kept as opaque JSON ([`MachineConfig::rest`]), so a machine's config
//! round-trips unchanged through a clone or an update. The metadata keys are how a deploy can be read
//! back from the machines alone: flyctl's own keys, and cutover's.

use cutover_core::{Check, CheckStatus, ErrorKind, Machine, MachineState, Release, StopSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Metadata key holding the release version (flyctl's key).
pub const RELEASE_VERSION_KEY: &str = "fly_release_version";
/// Metadata key holding the process group (flyctl's key).
pub const PROCESS_GROUP_KEY: &str = "fly_process_group";
/// Metadata key holding the release's image, so a deploy can be read back from the machines alone.
pub const RELEASE_IMAGE_KEY: &str = "cutover_release_image";
/// Metadata key naming the strategy that put the machine on its release.
pub const STRATEGY_KEY: &str = "cutover_strategy";
/// Metadata key holding a create's idempotency id: a retried create finds the machine by it.
pub const LAUNCH_ID_KEY: &str = "cutover_launch_id";

/// A machine as the API returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiMachine {
    /// The machine's id: what every call on it names.
    pub id: String,
    /// Its human-readable name (unique within the app).
    #[serde(default)]
    pub name: String,
    /// Its state as the API spells it (`started`, `stopped`, …; see [`parse_state`]).
    pub state: String,
    /// The region it runs in (`ams`; `local` on the local daemon).
    #[serde(default)]
    pub region: String,
    /// The version of the machine: a new one on every update.
    #[serde(default)]
    pub instance_id: String,
    /// Its address on the app's private network (loopback on the local daemon).
    #[serde(default)]
    pub private_ip: String,
    /// What it runs.
    #[serde(default)]
    pub config: MachineConfig,
    /// Its health checks' latest results.
    #[serde(default)]
    pub checks: Vec<ApiCheck>,
    /// Whether the proxy keeps traffic away from it.
    #[serde(default)]
    pub cordoned: bool,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created_at: String,
    /// When it last changed (RFC 3339).
    #[serde(default)]
    pub updated_at: String,
    /// What happened to it (start, exit, …), newest first, as fly-go's `MachineEvent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<MachineEvent>,
}

/// One event of a machine's life (fly-go's `MachineEvent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEvent {
    /// `launch`, `start`, `exit`, `stop`, `destroy`, `update`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The state it led to (`started`, `stopped`, …).
    #[serde(default)]
    pub status: String,
    /// Who caused it (`user`, `flyd`).
    #[serde(default)]
    pub source: String,
    /// Unix milliseconds.
    #[serde(default)]
    pub timestamp: i64,
    /// Details; an `exit` event carries the exit code here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<EventRequest>,
}

/// The details of a machine event (fly-go's `MachineRequest`); only what an exit needs is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRequest {
    /// How the machine's process ended (an `exit` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_event: Option<ExitEvent>,
    /// Older flaps put the exit under the monitor's event.
    #[serde(rename = "MonitorEvent", default, skip_serializing_if = "Option::is_none")]
    pub monitor_event: Option<MonitorEvent>,
    /// Everything else, kept as it came.
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

/// fly-go's `MachineMonitorEvent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorEvent {
    /// How the process ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_event: Option<ExitEvent>,
}

/// fly-go's `MachineExitEvent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitEvent {
    /// The process's exit code.
    #[serde(default)]
    pub exit_code: i32,
    /// The exit code the guest reported.
    #[serde(default)]
    pub guest_exit_code: i32,
    /// Killed for running out of memory.
    #[serde(default)]
    pub oom_killed: bool,
    /// The stop was asked for.
    #[serde(default)]
    pub requested_stop: bool,
    /// The signal that ended it, if one did.
    #[serde(default)]
    pub signal: i32,
}

impl EventRequest {
    /// The exit code, from `exit_event` or the monitor's (as fly-go's `GetExitCode`).
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_event
            .as_ref()
            .or(self.monitor_event.as_ref().and_then(|m| m.exit_event.as_ref()))
            .map(|e| e.exit_code)
    }
}

/// The part of a machine's config a deploy reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    /// The image it runs: what a release changes.
    #[serde(default)]
    pub image: String,
    /// The environment of its process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Free-form labels; the release, process group, strategy and launch id live here (the `*_KEY`
    /// constants).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Its volumes, which a strategy sees as the machine's `volumes` (a volume lives on one host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Everything else (services, checks, guest, …), passed through untouched.
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    /// The volume's id.
    #[serde(default)]
    pub volume: String,
    /// Where it is mounted in the machine.
    #[serde(default)]
    pub path: String,
    /// The volume's name, which the platform layer reports when there is one (else the id).
    #[serde(default)]
    pub name: String,
}

/// A check's status as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiCheck {
    /// The check's name in the machine's config (fly.toml's).
    pub name: String,
    /// `passing`, `warning` or `critical`; anything else reads as critical.
    pub status: String,
    /// What the last probe said, for messages.
    #[serde(default)]
    pub output: String,
    /// When the status was last reported (RFC 3339).
    #[serde(default)]
    pub updated_at: String,
}

/// `POST /apps/{app}/machines` and `POST /apps/{app}/machines/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// The machine's whole config (an update replaces it).
    pub config: MachineConfig,
    /// Where to create it; empty: the server picks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// Empty: the server names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Create (or update) without starting it.
    #[serde(default)]
    pub skip_launch: bool,
    /// Not routable until uncordoned (the proxy does not send it traffic).
    #[serde(default)]
    pub skip_service_registration: bool,
    /// Create the machine leased for this many seconds (cutover leases after creating instead; see
    /// [`Client::create`](crate::Client::create)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<u64>,
}

/// `POST /apps/{app}/machines/{id}/stop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    /// The signal to send first (`SIGINT`, …); `None`: the machine's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// How long to wait after the signal before killing, as a Go duration string ("5s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl From<&StopSpec> for StopRequest {
    fn from(how: &StopSpec) -> Self {
        Self { signal: Some(how.signal.clone()), timeout: Some(go_duration(how.timeout)) }
    }
}

/// `POST /apps/{app}/machines/{id}/metadata/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataValue {
    /// The key's new value.
    pub value: String,
}

/// An error body (`{"error": "..."}`). cutover's local daemon adds the error's kind, which is more
/// precise than the status code (a machine that failed while being waited on is `unhealthy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// The error's kind, from the local daemon; Fly sends none (the status code decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
}

impl ApiMachine {
    /// The exit code of the latest `exit` event that came after the latest `start` (as flyctl reads a
    /// release command's): `None` while it has not exited since it last started.
    pub fn latest_exit_code(&self) -> Option<i32> {
        let mut events: Vec<&MachineEvent> = self.events.iter().collect();
        events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        for e in events {
            match e.kind.as_str() {
                "exit" => return e.request.as_ref().and_then(EventRequest::exit_code),
                "start" => return None,
                _ => {}
            }
        }
        None
    }

    /// The platform layer's view of this machine.
    pub fn to_machine(&self) -> Machine {
        let meta = &self.config.metadata;
        Machine {
            id: self.id.clone(),
            name: self.name.clone(),
            region: self.region.clone(),
            process_group: meta.get(PROCESS_GROUP_KEY).cloned().unwrap_or_else(|| "app".into()),
            state: parse_state(&self.state),
            release: Release {
                version: meta.get(RELEASE_VERSION_KEY).and_then(|v| v.parse().ok()).unwrap_or(0),
                image: self.config.image.clone(),
            },
            cordoned: self.cordoned,
            checks: self
                .checks
                .iter()
                .map(|c| Check {
                    name: c.name.clone(),
                    status: match c.status.as_str() {
                        "passing" => CheckStatus::Passing,
                        "warning" => CheckStatus::Warning,
                        _ => CheckStatus::Critical,
                    },
                    output: c.output.clone(),
                })
                .collect(),
            volumes: self
                .config
                .mounts
                .iter()
                .map(|m| if m.name.is_empty() { m.volume.clone() } else { m.name.clone() })
                .collect(),
            metadata: meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// `config` moved onto `target`: its image, and the release metadata that lets a deploy be read back
/// from the machines alone (flyctl's `fly_release_version`, and cutover's image and strategy keys).
pub fn on_release(mut config: MachineConfig, target: &Release, strategy: Option<&str>) -> MachineConfig {
    config.image = target.image.clone();
    let meta = &mut config.metadata;
    meta.insert(RELEASE_VERSION_KEY.into(), target.version.to_string());
    meta.insert(RELEASE_IMAGE_KEY.into(), target.image.clone());
    if let Some(s) = strategy {
        meta.insert(STRATEGY_KEY.into(), s.to_string());
    }
    meta.remove(LAUNCH_ID_KEY);
    config
}

/// A state as the API spells it; unknown transient states read as `replacing` (busy, not serving).
pub fn parse_state(s: &str) -> MachineState {
    match s {
        "created" => MachineState::Created,
        "starting" => MachineState::Starting,
        "started" => MachineState::Started,
        "stopping" => MachineState::Stopping,
        "stopped" => MachineState::Stopped,
        "suspended" => MachineState::Suspended,
        "failed" => MachineState::Failed,
        "destroying" => MachineState::Destroying,
        "destroyed" => MachineState::Destroyed,
        _ => MachineState::Replacing,
    }
}

/// A Go duration string for whole milliseconds ("1500ms", "5s").
pub fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fly_machine_reads_as_a_platform_machine() {
        let json = r#"{
            "id": "148e", "name": "hello", "state": "started", "region": "ams",
            "instance_id": "01H", "private_ip": "fdaa::3",
            "config": {"image": "registry.fly.io/hello:v2", "guest": {"cpus": 1},
                       "metadata": {"fly_release_version": "2", "fly_process_group": "web"},
                       "mounts": [{"volume": "vol_1", "path": "/data", "name": "data"}]},
            "checks": [{"name": "http", "status": "warning", "output": "", "updated_at": "x"}],
            "cordoned": true, "host_status": "ok"
        }"#;
        let m: ApiMachine = serde_json::from_str(json).unwrap();
        assert!(m.config.rest.contains_key("guest"), "unknown config fields are kept");
        let pm = m.to_machine();
        assert_eq!(pm.release, Release { version: 2, image: "registry.fly.io/hello:v2".into() });
        assert_eq!((pm.process_group.as_str(), pm.state, pm.cordoned), ("web", MachineState::Started, true));
        assert_eq!(pm.checks[0].status, CheckStatus::Warning);
        assert_eq!(pm.volumes, ["data"]);
        assert!(!pm.is_serving());
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["config"]["guest"]["cpus"], 1);
    }

    #[test]
    fn the_exit_code_is_the_latest_exit_after_the_latest_start() {
        // As fly-go writes them: newest first, the code in `request.exit_event` (or under
        // `MonitorEvent` from older flaps).
        let json = r#"{"id": "e1", "state": "destroyed", "events": [
            {"type": "destroy", "status": "destroyed", "source": "flyd", "timestamp": 1700000004000},
            {"type": "exit", "status": "stopped", "source": "flyd", "timestamp": 1700000003000,
             "request": {"exit_event": {"exit_code": 3, "guest_exit_code": 3, "oom_killed": false,
                         "requested_stop": false, "signal": -1, "exited_at": "2023-11-14T22:13:23Z"},
                         "restart_count": 0}},
            {"type": "start", "status": "started", "source": "flyd", "timestamp": 1700000002000},
            {"type": "exit", "status": "stopped", "source": "flyd", "timestamp": 1700000001500,
             "request": {"exit_event": {"exit_code": 0}}},
            {"type": "launch", "status": "created", "source": "user", "timestamp": 1700000001000}
        ]}"#;
        let m: ApiMachine = serde_json::from_str(json).unwrap();
        assert_eq!(m.latest_exit_code(), Some(3));
        let monitor = r#"{"id": "e2", "state": "stopped", "events": [
            {"type": "exit", "timestamp": 2, "request": {"MonitorEvent": {"exit_event": {"exit_code": 137}}}},
            {"type": "start", "timestamp": 1}]}"#;
        assert_eq!(serde_json::from_str::<ApiMachine>(monitor).unwrap().latest_exit_code(), Some(137));
        let running = r#"{"id": "e3", "state": "started", "events": [
            {"type": "start", "timestamp": 2}, {"type": "exit", "timestamp": 1,
             "request": {"exit_event": {"exit_code": 1}}}]}"#;
        assert_eq!(serde_json::from_str::<ApiMachine>(running).unwrap().latest_exit_code(), None);
    }
}
