//! The Fly Machines API: its JSON shapes and one HTTP client (reqwest) for them.
//!
//! The local platform's daemon serves these same shapes for what it shares with Fly, so this one
//! client drives both (and the Fly platform will add leases and its token on top). Shapes follow the
//! Machines API documentation and superfly/fly-go's `machine_types.go`; fields we do not use are kept as
//! opaque JSON so a machine round-trips unchanged.

use super::{Check, CheckStatus, ErrorKind, Machine, MachineState, OpError, Release};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Metadata key holding the release version (flyctl's key).
pub const RELEASE_VERSION_KEY: &str = "fly_release_version";
/// Metadata key holding the process group (flyctl's key).
pub const PROCESS_GROUP_KEY: &str = "fly_process_group";

/// A machine as the API returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiMachine {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub private_ip: String,
    #[serde(default)]
    pub config: MachineConfig,
    #[serde(default)]
    pub checks: Vec<ApiCheck>,
    #[serde(default)]
    pub cordoned: bool,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

/// The part of a machine's config a deploy reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Everything else (services, checks, guest, …), passed through untouched.
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(default)]
    pub volume: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub name: String,
}

/// A check's status as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiCheck {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub updated_at: String,
}

/// `POST /apps/{app}/machines` and `POST /apps/{app}/machines/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    pub config: MachineConfig,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub skip_launch: bool,
    /// Not routable until uncordoned (the proxy does not send it traffic).
    #[serde(default)]
    pub skip_service_registration: bool,
}

/// `POST /apps/{app}/machines/{id}/stop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// A Go duration string ("5s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `POST /apps/{app}/machines/{id}/metadata/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataValue {
    pub value: String,
}

/// An error body (`{"error": "..."}`). cutover's local daemon adds the error's kind, which is more
/// precise than the status code (a machine that failed while being waited on is `unhealthy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
}

impl ApiMachine {
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

/// An HTTP client for one app's machines at `base` (e.g. `https://api.machines.dev/v1` or the local
/// daemon's `http://127.0.0.1:PORT/v1`).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    app: String,
    /// The platform's name, for messages.
    platform: &'static str,
}

impl Client {
    pub fn new(base: &str, app: &str, platform: &'static str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client with default TLS builds");
        Self { http, base: base.trim_end_matches('/').to_string(), app: app.to_string(), platform }
    }

    /// `{base}/apps/{app}/machines{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/apps/{}/machines{path}", self.base, self.app)
    }

    /// The underlying HTTP client (for a platform's own extra endpoints).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send a request; map transport failures and error statuses to [`OpError`]s.
    pub async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, OpError> {
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Platform };
            OpError::new(kind, format!("{what}: {} API unreachable: {e}", self.platform))
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&body) {
            Ok(ErrorBody { error, kind: Some(kind) }) => OpError::new(kind, format!("{what}: {error}")),
            Ok(ErrorBody { error, kind: None }) => {
                OpError::new(error_kind(status), format!("{what}: {status}: {error}"))
            }
            Err(_) => OpError::new(error_kind(status), format!("{what}: {status}: {}", body.trim())),
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, OpError> {
        let resp = self.send(what, req).await?;
        resp.json().await.map_err(|e| OpError::new(ErrorKind::Platform, format!("{what}: bad response: {e}")))
    }

    pub async fn list(&self) -> Result<Vec<ApiMachine>, OpError> {
        self.json("list machines", self.http.get(self.url(""))).await
    }

    pub async fn get(&self, id: &str) -> Result<ApiMachine, OpError> {
        self.json(&format!("get {id}"), self.http.get(self.url(&format!("/{id}")))).await
    }

    pub async fn create(&self, req: &CreateRequest) -> Result<ApiMachine, OpError> {
        self.json("create machine", self.http.post(self.url("")).json(req)).await
    }

    pub async fn update(&self, id: &str, req: &CreateRequest) -> Result<ApiMachine, OpError> {
        self.json(&format!("update {id}"), self.http.post(self.url(&format!("/{id}"))).json(req)).await
    }

    pub async fn start(&self, id: &str) -> Result<(), OpError> {
        self.send(&format!("start {id}"), self.http.post(self.url(&format!("/{id}/start")))).await.map(drop)
    }

    pub async fn stop(&self, id: &str, req: &StopRequest) -> Result<(), OpError> {
        self.send(&format!("stop {id}"), self.http.post(self.url(&format!("/{id}/stop"))).json(req))
            .await
            .map(drop)
    }

    /// Destroy (killing it if running). A machine already gone counts as destroyed.
    pub async fn destroy(&self, id: &str) -> Result<(), OpError> {
        match self
            .send(&format!("destroy {id}"), self.http.delete(self.url(&format!("/{id}?kill=true"))))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One server-side wait (the server caps it, Fly at 60 s); `Timeout` when the state was not reached.
    pub async fn wait_once(&self, id: &str, state: &str, timeout: Duration) -> Result<(), OpError> {
        let secs = timeout.as_secs().clamp(1, 60);
        let req = self
            .http
            .get(self.url(&format!("/{id}/wait")))
            .query(&[("state", state), ("timeout", &secs.to_string())])
            .timeout(Duration::from_secs(secs + 10));
        self.send(&format!("wait for {id} to be {state}"), req).await.map(drop)
    }

    pub async fn cordon(&self, id: &str) -> Result<(), OpError> {
        self.send(&format!("cordon {id}"), self.http.post(self.url(&format!("/{id}/cordon")))).await.map(drop)
    }

    pub async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        self.send(&format!("uncordon {id}"), self.http.post(self.url(&format!("/{id}/uncordon"))))
            .await
            .map(drop)
    }

    pub async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError> {
        let req = self
            .http
            .post(self.url(&format!("/{id}/metadata/{key}")))
            .json(&MetadataValue { value: value.to_string() });
        self.send(&format!("set metadata {key} of {id}"), req).await.map(drop)
    }
}

/// HTTP status → the error kind a strategy acts on.
pub fn error_kind(status: reqwest::StatusCode) -> ErrorKind {
    match status.as_u16() {
        404 => ErrorKind::NotFound,
        409 | 412 => ErrorKind::Conflict,
        408 | 504 => ErrorKind::Timeout,
        400 | 422 => ErrorKind::Invalid,
        401 | 403 => ErrorKind::Denied,
        501 => ErrorKind::Unsupported,
        _ => ErrorKind::Platform,
    }
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
    fn statuses_map_to_error_kinds() {
        use reqwest::StatusCode as S;
        assert_eq!(error_kind(S::NOT_FOUND), ErrorKind::NotFound);
        assert_eq!(error_kind(S::CONFLICT), ErrorKind::Conflict);
        assert_eq!(error_kind(S::TOO_MANY_REQUESTS), ErrorKind::Platform);
        assert_eq!(error_kind(S::SERVICE_UNAVAILABLE), ErrorKind::Platform);
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    }
}
