//! The Fly Machines API: its JSON shapes and one HTTP client (reqwest) for them.
//!
//! The local platform's daemon serves these same shapes for what it shares with Fly, so this one
//! client drives both (and the Fly platform will add leases and its token on top). Shapes follow the
//! Machines API documentation and superfly/fly-go's `machine_types.go`; fields we do not use are kept as
//! opaque JSON so a machine round-trips unchanged.

pub mod lease;
pub mod retry;
pub mod token;

use cutover_core::{Check, CheckStatus, ErrorKind, Machine, MachineState, OpError, Release, StopSpec};
pub use lease::{
    LeaseBook, LeaseData, LeaseRequest, LeaseResponse, NONCE_HEADER, OWNER_HEADER, describe_expiry,
};
pub use retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
pub use token::Token;

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
    /// Create the machine leased for this many seconds (cutover leases after creating instead; see
    /// [`Client::create`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<u64>,
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

impl From<&StopSpec> for StopRequest {
    fn from(how: &StopSpec) -> Self {
        Self { signal: Some(how.signal.clone()), timeout: Some(go_duration(how.timeout)) }
    }
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

/// The Machines API caps one wait request at 60 s; longer waits are loops of these.
pub const SERVER_WAIT_CAP: Duration = Duration::from_secs(60);

/// An HTTP client for one app's machines at `base` (e.g. `https://api.machines.dev/v1` or the local
/// daemon's `http://127.0.0.1:PORT/v1`): its token, its retry policy and the leases it holds.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    app: String,
    /// The platform's name, for messages.
    platform: &'static str,
    token: Option<Token>,
    retry: RetryPolicy,
    /// Who we are, in the lease owner header.
    owner: String,
    leases: Arc<LeaseBook>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("app", &self.app)
            .field("platform", &self.platform)
            .field("token", &self.token)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// One try of a request.
enum Attempt {
    Done(reqwest::Response),
    /// A transient failure, with the server's `Retry-After` if it gave one.
    Transient(OpError, Option<Duration>),
    Failed(OpError),
}

impl Client {
    /// A client without a token that does not retry (what the local daemon on loopback needs).
    pub fn new(base: &str, app: &str, platform: &'static str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client with default TLS builds");
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            app: app.to_string(),
            platform,
            token: None,
            retry: RetryPolicy::none(),
            owner: default_owner(),
            leases: Arc::default(),
        }
    }

    /// Send `token` on every request.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Retry transient failures so.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
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

    /// The leases this client holds.
    pub fn leases(&self) -> &LeaseBook {
        &self.leases
    }

    /// The token, if any, on a request.
    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.header(reqwest::header::AUTHORIZATION, t.header_value()),
            None => req,
        }
    }

    /// Our lease nonce on a mutating request of `id`, when we hold a lease on it.
    fn leased(&self, id: &str, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.leases.nonce(id) {
            Some(nonce) => req.header(NONCE_HEADER, nonce),
            None => req,
        }
    }

    /// Try a request once and classify the outcome.
    async fn attempt(&self, what: &str, req: reqwest::RequestBuilder) -> Attempt {
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Platform };
                let err = OpError::new(kind, format!("{what}: {} API unreachable: {e}", self.platform));
                return if retry::retryable_error(&e) {
                    Attempt::Transient(err, None)
                } else {
                    Attempt::Failed(err)
                };
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Attempt::Done(resp);
        }
        let after = retry::retry_after(resp.headers());
        let body = resp.text().await.unwrap_or_default();
        let err = match serde_json::from_str::<ErrorBody>(&body) {
            Ok(ErrorBody { error, kind: Some(kind) }) => OpError::new(kind, format!("{what}: {error}")),
            Ok(ErrorBody { error, kind: None }) => {
                OpError::new(error_kind(status), format!("{what}: {status}: {error}"))
            }
            Err(_) => OpError::new(error_kind(status), format!("{what}: {status}: {}", body.trim())),
        };
        let err = if err.kind == ErrorKind::Denied {
            OpError::new(
                ErrorKind::Denied,
                format!(
                    "{}; check the API token (FLY_API_TOKEN or --access-token) and that it may deploy {}",
                    err.message, self.app
                ),
            )
        } else {
            err
        };
        if retry::retryable_status(status) { Attempt::Transient(err, after) } else { Attempt::Failed(err) }
    }

    /// Send a request with the token, retrying transient failures; map transport failures and error
    /// statuses to [`OpError`]s.
    pub async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, OpError> {
        let req = self.authorized(req);
        let mut retries = 0;
        loop {
            // A request whose body cannot be replayed is tried once.
            let Some(this) = req.try_clone() else {
                return match self.attempt(what, req).await {
                    Attempt::Done(resp) => Ok(resp),
                    Attempt::Transient(e, _) | Attempt::Failed(e) => Err(e),
                };
            };
            match self.attempt(what, this).await {
                Attempt::Done(resp) => return Ok(resp),
                Attempt::Transient(e, after) if retries + 1 < self.retry.attempts => {
                    let pause = self.retry.delay(retries, after);
                    tracing::debug!("{} (retrying in {} ms)", e.message, pause.as_millis());
                    tokio::time::sleep(pause).await;
                    retries += 1;
                }
                Attempt::Transient(e, _) if retries > 0 => {
                    return Err(OpError::new(
                        e.kind,
                        format!("{} (after {} attempts)", e.message, retries + 1),
                    ));
                }
                Attempt::Transient(e, _) | Attempt::Failed(e) => return Err(e),
            }
        }
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

    /// `GET /{id}/metadata`.
    pub async fn metadata(&self, id: &str) -> Result<BTreeMap<String, String>, OpError> {
        self.json(&format!("metadata of {id}"), self.http.get(self.url(&format!("/{id}/metadata")))).await
    }

    /// Create a machine, idempotently: the request carries a launch id in its metadata
    /// ([`LAUNCH_ID_KEY`]), and a retry after a transient failure first looks for a machine carrying
    /// it, since the failed attempt may have created one whose answer was lost. While this client
    /// holds leases, the new machine is leased too before it is returned.
    pub async fn create(&self, req: &CreateRequest) -> Result<ApiMachine, OpError> {
        let mut req = req.clone();
        // Always a fresh id: a config cloned from another machine carries that machine's.
        let launch_id = format!("{:016x}", rand::random::<u64>());
        req.config.metadata.insert(LAUNCH_ID_KEY.into(), launch_id.clone());
        let what = "create machine";
        let mut retries = 0;
        let machine = loop {
            if retries > 0
                && let Some(m) = self.list().await?.into_iter().find(|m| {
                    m.config.metadata.get(LAUNCH_ID_KEY) == Some(&launch_id) && m.state != "destroyed"
                })
            {
                tracing::debug!("{what}: the earlier attempt created {}; using it", m.id);
                break m;
            }
            match self.attempt(what, self.authorized(self.http.post(self.url("")).json(&req))).await {
                Attempt::Done(resp) => {
                    break resp.json().await.map_err(|e| {
                        OpError::new(ErrorKind::Platform, format!("{what}: bad response: {e}"))
                    })?;
                }
                Attempt::Transient(e, after) if retries + 1 < self.retry.attempts => {
                    let pause = self.retry.delay(retries, after);
                    tracing::debug!("{} (retrying in {} ms)", e.message, pause.as_millis());
                    tokio::time::sleep(pause).await;
                    retries += 1;
                }
                Attempt::Transient(e, _) | Attempt::Failed(e) => return Err(e),
            }
        };
        if let Some(ttl) = self.leases.ttl() {
            self.acquire_lease(&machine.id, ttl).await?;
        }
        Ok(machine)
    }

    pub async fn update(&self, id: &str, req: &CreateRequest) -> Result<ApiMachine, OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}"))).json(req));
        self.json(&format!("update {id}"), req).await
    }

    pub async fn start(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/start"))));
        self.send(&format!("start {id}"), req).await.map(drop)
    }

    pub async fn stop(&self, id: &str, req: &StopRequest) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/stop"))).json(req));
        self.send(&format!("stop {id}"), req).await.map(drop)
    }

    /// Destroy (killing it if running). A machine already gone counts as destroyed, and its lease
    /// goes with it.
    pub async fn destroy(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.delete(self.url(&format!("/{id}?kill=true"))));
        match self.send(&format!("destroy {id}"), req).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.leases.remove(id);
        Ok(())
    }

    /// One server-side wait of at most the server's cap; `Timeout` when the state was not reached.
    pub async fn wait_once(&self, id: &str, state: &str, timeout: Duration) -> Result<(), OpError> {
        let secs = timeout.min(SERVER_WAIT_CAP).as_secs().max(1);
        let req = self
            .http
            .get(self.url(&format!("/{id}/wait")))
            .query(&[("state", state), ("timeout", &secs.to_string())])
            .timeout(Duration::from_secs(secs + 10));
        self.send(&format!("wait for {id} to be {state}"), req).await.map(drop)
    }

    /// Wait for a state until `timeout`, however long: the server answers each wait within its cap
    /// (60 s on Fly), so this asks again until the caller's own deadline. A machine that failed while
    /// being waited on to start is `Unhealthy` at once rather than at the deadline.
    pub async fn wait(&self, id: &str, state: &str, timeout: Duration) -> Result<(), OpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.wait_once(id, state, left.max(Duration::from_secs(1))).await {
                Err(e) if e.kind == ErrorKind::Timeout && tokio::time::Instant::now() < deadline => {
                    if state == "started"
                        && let Ok(m) = self.get(id).await
                        && m.state == "failed"
                    {
                        return Err(OpError::new(
                            ErrorKind::Unhealthy,
                            format!("machine {id} failed instead of starting"),
                        ));
                    }
                }
                Err(e) if e.kind == ErrorKind::Timeout => {
                    return Err(OpError::new(
                        ErrorKind::Timeout,
                        format!(
                            "machine {id} was not {state} within {}",
                            cutover_core::duration::display(timeout)
                        ),
                    ));
                }
                other => return other,
            }
        }
    }

    pub async fn cordon(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/cordon"))));
        self.send(&format!("cordon {id}"), req).await.map(drop)
    }

    pub async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/uncordon"))));
        self.send(&format!("uncordon {id}"), req).await.map(drop)
    }

    pub async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError> {
        let req = self
            .http
            .post(self.url(&format!("/{id}/metadata/{key}")))
            .json(&MetadataValue { value: value.to_string() });
        self.send(&format!("set metadata {key} of {id}"), self.leased(id, req)).await.map(drop)
    }

    /// `DELETE /{id}/metadata/{key}`.
    pub async fn delete_metadata(&self, id: &str, key: &str) -> Result<(), OpError> {
        let req = self.http.delete(self.url(&format!("/{id}/metadata/{key}")));
        self.send(&format!("delete metadata {key} of {id}"), self.leased(id, req)).await.map(drop)
    }

    /// Take a lease on `id` for `ttl` (whole seconds, at least 1). A lease held by someone else is a
    /// `Conflict` naming its owner and when it expires.
    pub async fn acquire_lease(&self, id: &str, ttl: Duration) -> Result<LeaseData, OpError> {
        let secs = ttl.as_secs().max(1);
        let req = self
            .http
            .post(self.url(&format!("/{id}/lease")))
            .query(&[("ttl", secs)])
            .header(OWNER_HEADER, &self.owner)
            .json(&LeaseRequest { ttl: secs });
        let what = format!("lease {id}");
        match self.json::<LeaseResponse>(&what, req).await {
            Ok(LeaseResponse { data: Some(lease), .. }) => {
                self.leases.insert(id, lease.nonce.clone(), Duration::from_secs(secs));
                Ok(lease)
            }
            Ok(_) => Err(OpError::new(ErrorKind::Platform, format!("{what}: the answer holds no lease"))),
            Err(e) if e.kind == ErrorKind::Conflict => Err(match self.lease_of(id).await {
                Ok(Some(held)) => OpError::new(
                    ErrorKind::Conflict,
                    format!(
                        "machine {id} of {} is leased by {} until {}: another deploy (cutover or flyctl) is \
                         changing this app; wait for it to finish, or for its lease to expire if it died",
                        self.app,
                        if held.owner.is_empty() { "someone else" } else { &held.owner },
                        describe_expiry(held.expires_at)
                    ),
                ),
                _ => e,
            }),
            Err(e) => Err(e),
        }
    }

    /// Extend our lease on `id` by its TTL from now.
    pub async fn refresh_lease(&self, id: &str) -> Result<LeaseData, OpError> {
        let ttl = self.leases.ttl().unwrap_or(Duration::from_secs(13)).as_secs().max(1);
        if self.leases.nonce(id).is_none() {
            return Err(OpError::new(ErrorKind::Conflict, format!("refresh lease of {id}: we hold none")));
        }
        let req = self
            .http
            .post(self.url(&format!("/{id}/lease")))
            .query(&[("ttl", ttl)])
            .header(OWNER_HEADER, &self.owner)
            .json(&LeaseRequest { ttl });
        let resp: LeaseResponse = self.json(&format!("refresh lease of {id}"), self.leased(id, req)).await?;
        let lease = resp.data.ok_or_else(|| {
            OpError::new(ErrorKind::Platform, format!("refresh lease of {id}: the answer holds no lease"))
        })?;
        self.leases.insert(id, lease.nonce.clone(), Duration::from_secs(ttl));
        Ok(lease)
    }

    /// Release our lease on `id`; a machine that is gone has no lease left to release.
    pub async fn release_lease(&self, id: &str) -> Result<(), OpError> {
        if self.leases.nonce(id).is_none() {
            return Ok(());
        }
        let req = self.leased(id, self.http.delete(self.url(&format!("/{id}/lease"))));
        let result = match self.send(&format!("release lease of {id}"), req).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        if result.is_ok() {
            self.leases.remove(id);
        }
        result
    }

    /// The live lease on `id`, whoever holds it.
    pub async fn lease_of(&self, id: &str) -> Result<Option<LeaseData>, OpError> {
        let req = self.http.get(self.url(&format!("/{id}/lease")));
        match self.json::<LeaseResponse>(&format!("lease of {id}"), req).await {
            Ok(r) => Ok(r.data),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// "cutover@HOST (pid N)": who holds our leases, as the local daemon records it.
fn default_owner() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "localhost".to_string() } else { host };
    format!("cutover@{host} (pid {})", std::process::id())
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
