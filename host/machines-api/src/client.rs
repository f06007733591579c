//! The one client for the Machines API, on Fly.io or the local daemon.
//!
//! Everything a platform needs of a remote call is here, so no call site can forget it: the token on
//! every request, transient failures retried ([`RetryPolicy`]), error statuses mapped to the error
//! kinds a strategy acts on, creates made idempotent (a retried create finds the machine an earlier
//! attempt made), and the lease nonce added to every mutating call of a machine this client leased.

use crate::lease::{
    LeaseBook, LeaseData, LeaseRequest, LeaseResponse, NONCE_HEADER, OWNER_HEADER, describe_expiry,
};
use crate::retry::{self, RetryPolicy};
use crate::token::Token;
use crate::types::{ApiMachine, CreateRequest, ErrorBody, LAUNCH_ID_KEY, MetadataValue, StopRequest};
use cutover_core::{ErrorKind, OpError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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

    /// The API's base URL, as given (without a trailing `/`).
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
                // flaps adds a machine-readable `status` (`insufficient_capacity`, `name_taken`, …).
                let code = flaps_status(&body).map(|c| format!(" ({c})")).unwrap_or_default();
                OpError::new(error_kind(status), format!("{what}: {status}: {error}{code}"))
            }
            Err(_) => OpError::new(error_kind(status), format!("{what}: {status}: {}", excerpt(&body))),
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

    /// `GET /`: every machine of the app, whatever its state.
    pub async fn list(&self) -> Result<Vec<ApiMachine>, OpError> {
        self.json("list machines", self.http.get(self.url(""))).await
    }

    /// `GET /{id}`.
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
        self.create_with(req, true).await
    }

    /// [`Client::create`] without leasing the new machine: for a short-lived machine that destroys
    /// itself (a release command's), which may be gone before a lease could be asked for, as flyctl
    /// creates it.
    pub async fn create_unleased(&self, req: &CreateRequest) -> Result<ApiMachine, OpError> {
        self.create_with(req, false).await
    }

    async fn create_with(&self, req: &CreateRequest, lease: bool) -> Result<ApiMachine, OpError> {
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
        if let Some(ttl) = self.leases.ttl().filter(|_| lease) {
            self.acquire_lease(&machine.id, ttl).await?;
        }
        Ok(machine)
    }

    /// `POST /{id}`: replace the machine's config; a running machine restarts on it.
    pub async fn update(&self, id: &str, req: &CreateRequest) -> Result<ApiMachine, OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}"))).json(req));
        self.json(&format!("update {id}"), req).await
    }

    /// `POST /{id}/start`.
    pub async fn start(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/start"))));
        self.send(&format!("start {id}"), req).await.map(drop)
    }

    /// `POST /{id}/stop`: the signal, then a kill once the timeout has passed.
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
    /// Any instance of the machine may answer it: see [`Client::wait_once_for`].
    pub async fn wait_once(&self, id: &str, state: &str, timeout: Duration) -> Result<(), OpError> {
        self.wait_once_for(id, state, None, timeout).await
    }

    /// One server-side wait for `state` of the machine's instance `version` (as an update or create
    /// returned it, [`ApiMachine::wait_version`]), so that an older instance still reported in that
    /// state cannot answer it. The version goes as `version` (fly-go's name now) and as
    /// `instance_id` (the older flaps name, which the API still reads).
    pub async fn wait_once_for(
        &self,
        id: &str,
        state: &str,
        version: Option<&str>,
        timeout: Duration,
    ) -> Result<(), OpError> {
        let secs = timeout.min(SERVER_WAIT_CAP).as_secs().max(1);
        let mut query: Vec<(&str, String)> = vec![("state", state.into()), ("timeout", secs.to_string())];
        if let Some(v) = version.filter(|v| !v.is_empty()) {
            query.push(("version", v.into()));
            query.push(("instance_id", v.into()));
        }
        let req = self
            .http
            .get(self.url(&format!("/{id}/wait")))
            .query(&query)
            .timeout(Duration::from_secs(secs + 10));
        self.send(&format!("wait for {id} to be {state}"), req).await.map(drop)
    }

    /// Wait for a state until `timeout`, however long, whichever instance reaches it: see
    /// [`Client::wait_for`].
    pub async fn wait(&self, id: &str, state: &str, timeout: Duration) -> Result<(), OpError> {
        self.wait_for(id, state, None, timeout).await
    }

    /// Wait for a state of the machine's instance `version` (any instance when `None`) until
    /// `timeout`, however long: the server answers each wait within its cap (60 s on Fly), so this asks
    /// again until the caller's own deadline. A machine that failed while being waited on to start is
    /// `Unhealthy` at once rather than at the deadline.
    pub async fn wait_for(
        &self,
        id: &str,
        state: &str,
        version: Option<&str>,
        timeout: Duration,
    ) -> Result<(), OpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.wait_once_for(id, state, version, left.max(Duration::from_secs(1))).await {
                Err(e) if e.kind == ErrorKind::Timeout && tokio::time::Instant::now() < deadline => {
                    if state == "started"
                        && let Ok(m) = self.get(id).await
                        && m.state == "failed"
                        && version.is_none_or(|v| v.is_empty() || m.wait_version() == v)
                    {
                        return Err(OpError::new(
                            ErrorKind::Unhealthy,
                            format!("machine {id} failed instead of starting"),
                        ));
                    }
                }
                Err(e) if e.kind == ErrorKind::Timeout => {
                    let which = version.map(|v| format!(" (instance {v})")).unwrap_or_default();
                    return Err(OpError::new(
                        ErrorKind::Timeout,
                        format!(
                            "machine {id}{which} was not {state} within {}",
                            cutover_core::duration::display(timeout)
                        ),
                    ));
                }
                other => return other,
            }
        }
    }

    /// `POST /{id}/cordon`: the proxy stops sending the machine new traffic.
    pub async fn cordon(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/cordon"))));
        self.send(&format!("cordon {id}"), req).await.map(drop)
    }

    /// `POST /{id}/uncordon`: back in the proxy's rotation.
    pub async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        let req = self.leased(id, self.http.post(self.url(&format!("/{id}/uncordon"))));
        self.send(&format!("uncordon {id}"), req).await.map(drop)
    }

    /// `POST /{id}/metadata/{key}`.
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

/// The `status` code of a flaps error body (`{"error": "...", "status": "insufficient_capacity"}`),
/// when it has a meaningful one.
fn flaps_status(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = v.get("status")?.as_str()?;
    (!code.is_empty() && code != "unknown").then(|| code.to_string())
}

/// At most 300 characters of a body that is not an error body (an HTML page from a proxy, …), on
/// one line.
fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
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
    use crate::types::go_duration;

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

    #[test]
    fn flaps_error_bodies_keep_their_status_code() {
        let body = include_str!("../../../tests/fly/fixtures/error_insufficient_capacity.json");
        assert_eq!(flaps_status(body).as_deref(), Some("insufficient_capacity"));
        assert_eq!(flaps_status(r#"{"error": "x", "status": "unknown"}"#), None);
        assert_eq!(flaps_status(r#"{"error": "x"}"#), None);
        assert_eq!(excerpt(&"a\n ".repeat(400)).chars().count(), 301);
    }
}
