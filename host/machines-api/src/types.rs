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

/// Metadata key cutover adds to a machine's *view* (never written to Fly) when the API says its host
/// is not `ok`: the value is the host status (`unreachable`, `unknown`). Strategies and the driver
/// see it in [`Machine::metadata`](cutover_core::Machine::metadata).
pub const HOST_STATUS_KEY: &str = "cutover_host_status";

/// A machine as the API returns it (fly-go's `Machine`).
///
/// Every field tolerates being absent or `null`: Fly omits empty fields, and a machine on a host that
/// cannot be reached comes with `config: null` and a partial `incomplete_config` instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiMachine {
    /// The machine's id: what every call on it names.
    pub id: String,
    /// Its human-readable name (unique within the app).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Its state as the API spells it (`started`, `stopped`, …; see [`parse_state`]).
    #[serde(default, deserialize_with = "null_default")]
    pub state: String,
    /// The region it runs in (`ams`; `local` on the local daemon).
    #[serde(default, deserialize_with = "null_default")]
    pub region: String,
    /// The version of the machine: a new one on every update. What a wait after an update names
    /// (see [`ApiMachine::wait_version`]).
    #[serde(default, deserialize_with = "null_default")]
    pub instance_id: String,
    /// The machine's version as newer API versions name it (fly-go prefers it to `instance_id`).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Its address on the app's private network (loopback on the local daemon).
    #[serde(default, deserialize_with = "null_default")]
    pub private_ip: String,
    /// What it runs. Empty (and `null` on the wire) when the host is not `ok`: see
    /// [`ApiMachine::incomplete_config`] and [`ApiMachine::known_config`].
    #[serde(default, deserialize_with = "null_default")]
    pub config: MachineConfig,
    /// A partial config, rebuilt by the API when the host cannot be reached: enough to know the image
    /// and metadata, not to clone or recreate the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_config: Option<MachineConfig>,
    /// `ok`, `unknown` or `unreachable`; empty when the API did not say (the local daemon).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub host_status: String,
    /// The image it runs, as the registry resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    /// Its latest events, newest first (`launch`, `start`, `exit`, `update`, …).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<MachineEvent>,
    /// The nonce of the lease on it, when the caller holds one.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Its health checks' latest results.
    #[serde(default, deserialize_with = "null_default")]
    pub checks: Vec<ApiCheck>,
    /// Whether the proxy keeps traffic away from it.
    #[serde(default, deserialize_with = "null_default")]
    pub cordoned: bool,
    /// When it was created (RFC 3339).
    #[serde(default, deserialize_with = "null_default")]
    pub created_at: String,
    /// When it last changed (RFC 3339).
    #[serde(default, deserialize_with = "null_default")]
    pub updated_at: String,
}

/// `null` reads as the type's default (Go omits, or nulls, what it has not set).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A resolved image reference (fly-go's `MachineImageRef`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    /// `registry.fly.io`, `docker.io`, …
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub registry: String,
    /// The repository within the registry.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// The tag, if the image was named by one.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// The content digest (`sha256:…`).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// The image's labels.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl ImageRef {
    /// `registry/repository[:tag][@digest]`, as fly-go's `FullImageRef`; `None` without a repository.
    pub fn full(&self) -> Option<String> {
        if self.repository.is_empty() {
            return None;
        }
        let mut s = if self.registry.is_empty() {
            self.repository.clone()
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        if !self.tag.is_empty() {
            s = format!("{s}:{}", self.tag);
        }
        if !self.digest.is_empty() {
            s = format!("{s}@{}", self.digest);
        }
        Some(s)
    }
}

/// One event of a machine (fly-go's `MachineEvent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEvent {
    /// `launch`, `start`, `exit`, `update`, `stop`, `destroy`, …
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub kind: String,
    /// The state it led to (`started`, `stopped`, …).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Who caused it (`user`, `flyd`).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// When, in Unix milliseconds.
    #[serde(default, deserialize_with = "null_default")]
    pub timestamp: i64,
    /// The event's details: for an `exit`, how the process ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<EventRequest>,
}

/// The details of a machine event (fly-go's `MachineRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRequest {
    /// How the process exited (an `exit` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_event: Option<ExitEvent>,
    /// The monitor's view of the exit, which fly-go prefers when present (its key is capitalised
    /// on the wire).
    #[serde(rename = "MonitorEvent", default, skip_serializing_if = "Option::is_none")]
    pub monitor_event: Option<MonitorEvent>,
    /// How many times the machine has been restarted.
    #[serde(default, deserialize_with = "null_default")]
    pub restart_count: i64,
}

/// The monitor's part of an event (fly-go's `MachineMonitorEvent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorEvent {
    /// How the process exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_event: Option<ExitEvent>,
}

/// How a machine's process ended (fly-go's `MachineExitEvent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitEvent {
    /// The process's exit code.
    #[serde(default, deserialize_with = "null_default")]
    pub exit_code: i64,
    /// The guest's own exit code.
    #[serde(default, deserialize_with = "null_default")]
    pub guest_exit_code: i64,
    /// The signal that ended the guest, if any.
    #[serde(default, deserialize_with = "null_default")]
    pub guest_signal: i64,
    /// Killed for running out of memory.
    #[serde(default, deserialize_with = "null_default")]
    pub oom_killed: bool,
    /// Stopped because someone asked.
    #[serde(default, deserialize_with = "null_default")]
    pub requested_stop: bool,
    /// About to be restarted by its restart policy.
    #[serde(default, deserialize_with = "null_default")]
    pub restarting: bool,
    /// The signal that ended the process, if any.
    #[serde(default, deserialize_with = "null_default")]
    pub signal: i64,
    /// When (RFC 3339).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub exited_at: String,
}

impl EventRequest {
    /// The exit code: the monitor's if it has one, else the exit event's (fly-go's `GetExitCode`).
    pub fn exit_code(&self) -> Option<i64> {
        self.monitor_event
            .as_ref()
            .and_then(|m| m.exit_event.as_ref())
            .or(self.exit_event.as_ref())
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
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// `passing`, `warning` or `critical`; anything else (or nothing) reads as critical.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    /// What the last probe said, for messages.
    #[serde(default, deserialize_with = "null_default")]
    pub output: String,
    /// When the status was last reported (RFC 3339).
    #[serde(default, deserialize_with = "null_default")]
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
    /// Whether the API could reach the machine's host (`host_status` `ok`, or not given, as the
    /// local daemon does). When not, `config` is absent and the machine can be neither read in full
    /// nor changed.
    pub fn is_reachable(&self) -> bool {
        self.host_status.is_empty() || self.host_status == "ok"
    }

    /// The config to read it by: the full one, or the API's partial rebuild of it when the host
    /// cannot be reached (fly-go's `GetConfig`). Never to clone or update from.
    pub fn known_config(&self) -> &MachineConfig {
        match (&self.incomplete_config, self.is_reachable()) {
            (Some(partial), false) => partial,
            _ => &self.config,
        }
    }

    /// The version a wait after a change of this machine names, so that only the instance the
    /// change made can answer it: `version` when the API gives one, else `instance_id` (as fly-go
    /// chose before it made the version an option). Empty when the API gave neither.
    pub fn wait_version(&self) -> &str {
        if self.version.is_empty() { &self.instance_id } else { &self.version }
    }

    /// The exit code of the latest `exit` event after the latest `start` (what flyctl reads of its
    /// release command machine, fly-go's `GetLatestEventOfTypeAfterType("exit", "start")`): `None`
    /// when the machine has not exited since it last started. Events are read newest first, as the
    /// API sends them; when they carry timestamps they are ordered by them first (stable, so events
    /// of the same millisecond keep the API's order).
    pub fn latest_exit_code(&self) -> Option<i64> {
        let mut events: Vec<&MachineEvent> = self.events.iter().collect();
        if events.iter().all(|e| e.timestamp > 0) {
            events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        }
        let start = events.iter().position(|e| e.kind == "start")?;
        events[..start].iter().find(|e| e.kind == "exit")?.request.as_ref()?.exit_code()
    }

    /// The image it runs: its config's, else (host unreachable) the partial config's, else the
    /// resolved `image_ref`'s.
    pub fn image(&self) -> String {
        let image = &self.known_config().image;
        if !image.is_empty() {
            return image.clone();
        }
        self.image_ref.as_ref().and_then(ImageRef::full).unwrap_or_default()
    }

    /// The platform layer's view of this machine. A machine whose host cannot be reached is read
    /// from the API's partial config, carries [`HOST_STATUS_KEY`] in its metadata (so it is never
    /// mistaken for a machine without an image or release) and a critical `host` check (so it never
    /// counts as serving).
    pub fn to_machine(&self) -> Machine {
        let config = self.known_config();
        let meta = &config.metadata;
        let mut metadata: Vec<(String, String)> = meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !self.is_reachable() {
            metadata.push((HOST_STATUS_KEY.into(), self.host_status.clone()));
        }
        Machine {
            id: self.id.clone(),
            name: self.name.clone(),
            region: self.region.clone(),
            process_group: meta.get(PROCESS_GROUP_KEY).cloned().unwrap_or_else(|| "app".into()),
            state: parse_state(&self.state),
            release: Release {
                version: meta.get(RELEASE_VERSION_KEY).and_then(|v| v.parse().ok()).unwrap_or(0),
                image: self.image(),
            },
            cordoned: self.cordoned,
            checks: self
                .checks
                .iter()
                // Compatibility fakes flaps inserts for old flyctl's bluegreen (fly-go drops them).
                .filter(|c| !c.name.starts_with("bg_deployments_compat"))
                .map(|c| Check {
                    name: c.name.clone(),
                    status: match c.status.as_str() {
                        "passing" => CheckStatus::Passing,
                        "warning" => CheckStatus::Warning,
                        _ => CheckStatus::Critical,
                    },
                    output: c.output.clone(),
                })
                // Nothing about a machine on a lost host is known to pass.
                .chain((!self.is_reachable()).then(|| Check {
                    name: "host".into(),
                    status: CheckStatus::Critical,
                    output: format!("the host is {}", self.host_status),
                }))
                .collect(),
            volumes: config
                .mounts
                .iter()
                .map(|m| if m.name.is_empty() { m.volume.clone() } else { m.name.clone() })
                .collect(),
            metadata,
        }
    }
}

/// The host status a platform machine was read with, when its host was not `ok` (see
/// [`HOST_STATUS_KEY`]).
pub fn host_status_of(m: &Machine) -> Option<&str> {
    m.metadata.iter().find(|(k, _)| k == HOST_STATUS_KEY).map(|(_, v)| v.as_str())
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

    /// Conformance fixtures written from superfly/fly-go's `machine_types.go` (shared with the
    /// end-to-end tests in `tests/fly/`).
    fn fixture(name: &str) -> ApiMachine {
        let text = match name {
            "ok" => include_str!("../../../tests/fly/fixtures/machine_ok.json"),
            "unreachable" => include_str!("../../../tests/fly/fixtures/machine_unreachable.json"),
            "exit3" => include_str!("../../../tests/fly/fixtures/release_command_exit_3.json"),
            "monitor" => include_str!("../../../tests/fly/fixtures/restarted_monitor_exit.json"),
            "running" => include_str!("../../../tests/fly/fixtures/started_not_exited.json"),
            _ => unreachable!("no fixture {name}"),
        };
        serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    #[test]
    fn an_unreachable_machine_reads_from_its_partial_config_and_says_so() {
        let m = fixture("unreachable");
        assert!(!m.is_reachable());
        assert_eq!(m.config, MachineConfig::default(), "config: null reads as empty");
        let pm = m.to_machine();
        assert_eq!(pm.release, Release { version: 1, image: "registry.fly.io/hello:deployment-01J2".into() });
        assert_eq!(host_status_of(&pm), Some("unreachable"));
        assert_eq!(pm.checks.len(), 1, "checks: null reads as none, and the lost host is a failing check");
        assert_eq!((pm.checks[0].name.as_str(), pm.checks[0].status), ("host", CheckStatus::Critical));
        assert!(!pm.is_serving());
        let ok = fixture("ok");
        assert!(ok.is_reachable());
        assert_eq!(host_status_of(&ok.to_machine()), None);
        assert_eq!(ok.to_machine().checks.len(), 1, "bg_deployments_compat checks are dropped");
        assert_eq!(ok.wait_version(), "01J2Y8ZQ4C7H1B5D3F9K2M6N8R");
        let list: Vec<ApiMachine> = serde_json::from_str(&format!(
            "[{}, {}]",
            include_str!("../../../tests/fly/fixtures/machine_ok.json"),
            include_str!("../../../tests/fly/fixtures/machine_unreachable.json")
        ))
        .unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn the_exit_code_is_the_latest_exit_after_the_latest_start() {
        assert_eq!(fixture("exit3").latest_exit_code(), Some(3));
        assert_eq!(
            fixture("monitor").latest_exit_code(),
            Some(0),
            "the monitor's exit code wins, as in fly-go"
        );
        assert_eq!(fixture("running").latest_exit_code(), None, "an exit before the latest start is stale");
        assert_eq!(fixture("ok").latest_exit_code(), None);
        let mut shuffled = fixture("exit3");
        shuffled.events.reverse();
        assert_eq!(shuffled.latest_exit_code(), Some(3), "ordered by timestamp, not by position");
        let mut never_started = fixture("exit3");
        never_started.events.retain(|e| e.kind != "start");
        assert_eq!(never_started.latest_exit_code(), None);
    }

    #[test]
    fn an_image_ref_spells_as_fly_go_does() {
        let r = ImageRef {
            registry: "r.io".into(),
            repository: "app".into(),
            tag: "v1".into(),
            ..Default::default()
        };
        assert_eq!(r.full().as_deref(), Some("r.io/app:v1"));
        let r = ImageRef { digest: "sha256:ab".into(), ..r };
        assert_eq!(r.full().as_deref(), Some("r.io/app:v1@sha256:ab"));
        assert_eq!(ImageRef::default().full(), None);
        let mut m = fixture("unreachable");
        m.incomplete_config = None;
        assert!(m.image().starts_with("registry.fly.io/hello:deployment-01J2@sha256:"), "{}", m.image());
    }
}
