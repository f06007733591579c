//! A fake Fly Machines API for contract tests: the documented request and response shapes (the
//! Machines API reference and superfly/fly-go's `machine_types.go`, `flaps_machines.go`), in memory.
//!
//! What it enforces, as Fly does: the bearer token on every request (401 otherwise); leases (409 to a
//! second holder, naming the owner; 412 to a mutating call of a leased machine without its nonce);
//! `DELETE` of a running machine needs `kill=true`, of a missing one is 404; `wait` answers 408 after
//! its cap. Its clock is scaled for tests: machines boot and stop in milliseconds and the wait cap
//! (60 s on Fly) is configurable, so a test of the client's loop-to-deadline takes a second, not
//! minutes. Faults: bursts of 5xx (with `Retry-After`), every n-th request failing, creates performed
//! but answered 502 (to test idempotent creates), and images that boot but fail their checks.
// Handlers answer errors as ready responses; their size does not matter in a test server.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cutover::machines_api::{
    ApiCheck, ApiMachine, CreateRequest, LeaseData, LeaseResponse, MachineConfig, MetadataValue, StopRequest,
};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The lease nonce header.
const NONCE: &str = "fly-machine-lease-nonce";

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// The only token it accepts (as `Authorization: Bearer …`).
    pub token: String,
    /// Who holds leases taken with that token (Fly derives the owner from the token).
    pub owner: String,
    /// Its cap on one wait (Fly's is 60 s).
    pub wait_cap: Duration,
    pub boot: Duration,
    pub stop: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            token: "test-token".into(),
            owner: "deployer@example.com".into(),
            wait_cap: Duration::from_millis(300),
            boot: Duration::from_millis(40),
            stop: Duration::from_millis(20),
        }
    }
}

/// A lease on a fake machine.
#[derive(Debug, Clone)]
pub struct FakeLease {
    pub nonce: String,
    pub owner: String,
    /// Unix milliseconds (whole seconds on the wire, as Fly gives).
    pub expires_ms: i64,
}

impl FakeLease {
    pub fn live(&self) -> bool {
        self.expires_ms > now_ms()
    }
}

/// One machine.
#[derive(Debug, Clone)]
pub struct FakeMachine {
    pub app: String,
    pub api: ApiMachine,
    pub lease: Option<FakeLease>,
    /// Bumped on every change of state, so a delayed transition of an older one stands down.
    generation: u64,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub nonce: bool,
    pub authorization: String,
}

/// Faults to inject.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next n requests answer `burst_status`.
    pub burst: u32,
    pub burst_status: u16,
    /// `Retry-After` seconds on injected failures.
    pub retry_after: Option<u32>,
    /// Every n-th request (counting all) answers 503.
    pub every: Option<u64>,
    /// The next n creates are performed but answered 502.
    pub lose_creates: u32,
    /// Machines on these images boot and fail their checks.
    pub unhealthy_images: BTreeSet<String>,
    /// Machines on these images boot and their checks stay at `warning`.
    pub warning_images: BTreeSet<String>,
}

#[derive(Default)]
struct Inner {
    machines: BTreeMap<String, FakeMachine>,
    destroyed: BTreeSet<String>,
    seen: Vec<Seen>,
    requests: u64,
    next: u64,
    refreshes: u64,
}

/// The fake's shared state; tests inspect and arrange it directly.
pub struct Fake {
    pub opts: FakeOptions,
    inner: Mutex<Inner>,
    pub faults: Mutex<Faults>,
    changes: watch::Sender<u64>,
}

/// A running fake.
pub struct FakeFly {
    /// Base URL, ending in `/v1`.
    pub url: String,
    pub state: Arc<Fake>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

impl FakeFly {
    /// Serve on a free loopback port in the current tokio runtime.
    pub async fn start(opts: FakeOptions) -> Self {
        let (changes, _) = watch::channel(0);
        let state = Arc::new(Fake {
            opts,
            inner: Mutex::new(Inner::default()),
            faults: Mutex::new(Faults::default()),
            changes,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url: format!("http://{addr}/v1"), state }
    }
}

impl Fake {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Add a started machine of `app` on `image` / `version` (the fleet a test starts from).
    pub fn seed(&self, app: &str, image: &str, version: u64, region: &str, group: &str) -> String {
        let mut config = MachineConfig { image: image.into(), ..Default::default() };
        config.metadata.insert("fly_release_version".into(), version.to_string());
        config.metadata.insert("fly_process_group".into(), group.into());
        config.metadata.insert("fly_platform_version".into(), "v2".into());
        config.rest.insert(
            "checks".into(),
            json!({"http": {"type": "http", "port": 8080, "path": "/health", "interval": "10s"}}),
        );
        let mut inner = self.lock();
        inner.next += 1;
        let id = format!("{:014x}", 0x1000_0000_0000u64 + inner.next);
        let api = ApiMachine {
            id: id.clone(),
            name: format!("{app}-{}", inner.next),
            state: "started".into(),
            region: region.into(),
            instance_id: format!("01H{}", inner.next),
            private_ip: "fdaa::1".into(),
            config,
            checks: vec![check("passing")],
            ..Default::default()
        };
        inner.machines.insert(id.clone(), FakeMachine { app: app.into(), api, lease: None, generation: 0 });
        id
    }

    /// Every machine of every app.
    pub fn machines(&self) -> Vec<FakeMachine> {
        self.lock().machines.values().cloned().collect()
    }

    /// Machines holding a live lease.
    pub fn live_leases(&self) -> Vec<(String, FakeLease)> {
        self.lock()
            .machines
            .values()
            .filter_map(|m| m.lease.clone().filter(FakeLease::live).map(|l| (m.api.id.clone(), l)))
            .collect()
    }

    /// Put a lease of someone else on a machine.
    pub fn lease_as(&self, id: &str, owner: &str, ttl: Duration) {
        let mut inner = self.lock();
        let m = inner.machines.get_mut(id).expect("machine");
        m.lease = Some(FakeLease {
            nonce: "their-nonce".into(),
            owner: owner.into(),
            expires_ms: now_ms() + ttl.as_millis() as i64,
        });
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Lease refreshes so far.
    pub fn refreshes(&self) -> u64 {
        self.lock().refreshes
    }

    /// Set a machine's state after `delay`, unless it changed in between; then its checks.
    fn transition(self: &Arc<Self>, id: &str, generation: u64, delay: Duration, to: &'static str) {
        let fake = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let (unhealthy, warning) = {
                let f = fake.faults.lock().unwrap();
                (f.unhealthy_images.clone(), f.warning_images.clone())
            };
            let mut inner = fake.lock();
            if let Some(m) = inner.machines.get_mut(&id)
                && m.generation == generation
            {
                m.api.state = to.into();
                m.api.checks = match to {
                    "started" if unhealthy.contains(&m.api.config.image) => vec![check("critical")],
                    "started" if warning.contains(&m.api.config.image) => vec![check("warning")],
                    "started" => vec![check("passing")],
                    _ => vec![check("critical")],
                };
                drop(inner);
                fake.changed();
            }
        });
    }

    /// Move a machine to `now`, and to `then` after `delay`.
    fn set_state(self: &Arc<Self>, m: &mut FakeMachine, now: &str, then: Option<(&'static str, Duration)>) {
        m.generation += 1;
        m.api.state = now.into();
        if now != "started" {
            m.api.checks = vec![check("critical")];
        }
        if let Some((to, delay)) = then {
            self.transition(&m.api.id, m.generation, delay, to);
        }
    }
}

fn check(status: &str) -> ApiCheck {
    ApiCheck { name: "http".into(), status: status.into(), output: String::new(), updated_at: String::new() }
}

type S = State<Arc<Fake>>;

fn router(fake: Arc<Fake>) -> Router {
    let m = "/v1/apps/{app}/machines";
    Router::new()
        .route(m, get(list).post(create))
        .route(&format!("{m}/{{id}}"), get(get_machine).post(update).delete(destroy))
        .route(&format!("{m}/{{id}}/start"), post(start))
        .route(&format!("{m}/{{id}}/stop"), post(stop))
        .route(&format!("{m}/{{id}}/wait"), get(wait))
        .route(&format!("{m}/{{id}}/cordon"), post(cordon))
        .route(&format!("{m}/{{id}}/uncordon"), post(uncordon))
        .route(&format!("{m}/{{id}}/metadata"), get(metadata))
        .route(&format!("{m}/{{id}}/metadata/{{key}}"), post(set_metadata).delete(delete_metadata))
        .route(&format!("{m}/{{id}}/lease"), get(get_lease).post(lease).delete(release))
        .layer(axum::middleware::from_fn_with_state(fake.clone(), gate))
        .with_state(fake)
}

/// Record the request, check the token, inject faults.
async fn gate(State(f): S, req: Request, next: Next) -> Response {
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let n = {
        let mut inner = f.lock();
        inner.requests += 1;
        inner.seen.push(Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            nonce: req.headers().contains_key(NONCE),
            authorization: auth.clone(),
        });
        inner.requests
    };
    if auth != format!("Bearer {}", f.opts.token) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized: the token is missing, expired or not valid");
    }
    let injected = {
        let mut faults = f.faults.lock().unwrap();
        let retry_after = faults.retry_after;
        if faults.burst > 0 {
            faults.burst -= 1;
            Some((
                StatusCode::from_u16(faults.burst_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                retry_after,
            ))
        } else if faults.every.is_some_and(|e| n % e == 0) {
            Some((StatusCode::SERVICE_UNAVAILABLE, retry_after))
        } else {
            None
        }
    };
    if let Some((status, after)) = injected {
        let mut resp = error(status, "injected: the service is briefly unavailable");
        if let Some(s) = after {
            resp.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
        }
        return resp;
    }
    next.run(req).await
}

/// The machine `id` of `app`, or a 404.
fn find<'a>(inner: &'a mut Inner, app: &str, id: &str) -> Result<&'a mut FakeMachine, Response> {
    match inner.machines.get_mut(id) {
        Some(m) if m.app == app => Ok(m),
        _ => Err(error(StatusCode::NOT_FOUND, format!("machine {id} not found"))),
    }
}

/// A mutating call on a leased machine needs the lease's nonce (412 otherwise).
fn nonce_ok(m: &FakeMachine, headers: &HeaderMap) -> Result<(), Response> {
    match &m.lease {
        Some(l) if l.live() && headers.get(NONCE).and_then(|v| v.to_str().ok()) != Some(l.nonce.as_str()) => {
            Err(error(
                StatusCode::PRECONDITION_FAILED,
                format!("machine {} is leased; the request lacks its lease nonce", m.api.id),
            ))
        }
        _ => Ok(()),
    }
}

async fn list(State(f): S, Path(app): Path<String>) -> Response {
    let inner = f.lock();
    let v: Vec<&ApiMachine> = inner.machines.values().filter(|m| m.app == app).map(|m| &m.api).collect();
    Json(v).into_response()
}

async fn get_machine(State(f): S, Path((app, id)): Path<(String, String)>) -> Response {
    let mut inner = f.lock();
    match find(&mut inner, &app, &id) {
        Ok(m) => Json(m.api.clone()).into_response(),
        Err(r) => r,
    }
}

async fn create(State(f): S, Path(app): Path<String>, Json(req): Json<CreateRequest>) -> Response {
    if req.config.image.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "config.image is required");
    }
    let lose = {
        let mut faults = f.faults.lock().unwrap();
        let lose = faults.lose_creates > 0;
        faults.lose_creates = faults.lose_creates.saturating_sub(1);
        lose
    };
    let api = {
        let mut inner = f.lock();
        inner.next += 1;
        let id = format!("{:014x}", 0x2000_0000_0000u64 + inner.next);
        let api = ApiMachine {
            id: id.clone(),
            name: if req.name.is_empty() { format!("{app}-{}", inner.next) } else { req.name.clone() },
            state: "created".into(),
            region: if req.region.is_empty() { "ams".into() } else { req.region.clone() },
            instance_id: format!("01H{}", inner.next),
            private_ip: "fdaa::2".into(),
            config: req.config.clone(),
            checks: vec![],
            cordoned: req.skip_service_registration,
            ..Default::default()
        };
        let mut m = FakeMachine { app: app.clone(), api, lease: None, generation: 0 };
        if !req.skip_launch {
            f.set_state(&mut m, "starting", Some(("started", f.opts.boot)));
        }
        let api = m.api.clone();
        inner.machines.insert(id, m);
        api
    };
    f.changed();
    if lose {
        return error(StatusCode::BAD_GATEWAY, "injected: the answer to this create was lost");
    }
    Json(api).into_response()
}

async fn update(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(req): Json<CreateRequest>,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.api.config = req.config;
    m.api.instance_id = format!("{}u", m.api.instance_id);
    let running = matches!(m.api.state.as_str(), "started" | "starting" | "replacing");
    if running || !req.skip_launch {
        f.set_state(m, "replacing", Some(("started", f.opts.boot)));
    }
    let api = m.api.clone();
    drop(inner);
    f.changed();
    Json(api).into_response()
}

async fn start(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    let previous = m.api.state.clone();
    if previous != "started" {
        f.set_state(m, "starting", Some(("started", f.opts.boot)));
    }
    drop(inner);
    f.changed();
    Json(json!({"previous_state": previous})).into_response()
}

async fn stop(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<StopRequest>>,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    if let Some(Json(StopRequest { timeout: Some(t), .. })) = &body
        && humantime::parse_duration(t).is_err()
    {
        return error(StatusCode::BAD_REQUEST, format!("bad stop timeout {t:?}"));
    }
    f.set_state(m, "stopping", Some(("stopped", f.opts.stop)));
    drop(inner);
    f.changed();
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
struct KillQuery {
    #[serde(default)]
    kill: bool,
}

async fn destroy(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<KillQuery>,
    headers: HeaderMap,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    if !q.kill && matches!(m.api.state.as_str(), "started" | "starting" | "replacing") {
        return error(StatusCode::PRECONDITION_FAILED, "unable to destroy machine, not currently stopped");
    }
    inner.machines.remove(&id);
    inner.destroyed.insert(id);
    drop(inner);
    f.changed();
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
struct WaitQuery {
    state: String,
    #[serde(default)]
    timeout: Option<u64>,
}

/// Wait for a state; after `min(timeout, cap)` a 408 as Fly answers.
async fn wait(State(f): S, Path((app, id)): Path<(String, String)>, Query(q): Query<WaitQuery>) -> Response {
    let asked = Duration::from_secs(q.timeout.unwrap_or(60).clamp(1, 60));
    let deadline = tokio::time::Instant::now() + asked.min(f.opts.wait_cap);
    let mut changes = f.changes.subscribe();
    loop {
        {
            let mut inner = f.lock();
            if q.state == "destroyed" && inner.destroyed.contains(&id) {
                return Json(json!({"ok": true})).into_response();
            }
            match find(&mut inner, &app, &id) {
                Ok(m) if m.api.state == q.state => return Json(json!({"ok": true})).into_response(),
                Ok(_) => {}
                Err(r) => return r,
            }
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return error(StatusCode::REQUEST_TIMEOUT, "deadline_exceeded: timeout waiting for the machine");
        }
    }
}

async fn set_cordoned(f: Arc<Fake>, app: &str, id: &str, headers: &HeaderMap, cordoned: bool) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, app, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, headers) {
        return r;
    }
    m.api.cordoned = cordoned;
    drop(inner);
    f.changed();
    Json(json!({"ok": true})).into_response()
}

async fn cordon(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    set_cordoned(f, &app, &id, &headers, true).await
}

async fn uncordon(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    set_cordoned(f, &app, &id, &headers, false).await
}

async fn metadata(State(f): S, Path((app, id)): Path<(String, String)>) -> Response {
    let mut inner = f.lock();
    match find(&mut inner, &app, &id) {
        Ok(m) => Json(m.api.config.metadata.clone()).into_response(),
        Err(r) => r,
    }
}

async fn set_metadata(
    State(f): S,
    Path((app, id, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(v): Json<MetadataValue>,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.api.config.metadata.insert(key, v.value);
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_metadata(
    State(f): S,
    Path((app, id, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.api.config.metadata.remove(&key);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct TtlQuery {
    #[serde(default)]
    ttl: Option<u64>,
}

fn lease_json(l: &FakeLease) -> Json<LeaseResponse> {
    Json(LeaseResponse {
        status: "success".into(),
        data: Some(LeaseData {
            nonce: l.nonce.clone(),
            expires_at: l.expires_ms / 1000,
            owner: l.owner.clone(),
            version: "01HV".into(),
        }),
        message: String::new(),
        code: String::new(),
    })
}

/// Acquire (no nonce) or refresh (with the holder's nonce); 409 when someone else holds it.
async fn lease(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<TtlQuery>,
    headers: HeaderMap,
    body: Option<Json<TtlQuery>>,
) -> Response {
    let ttl = q.ttl.or(body.and_then(|Json(b)| b.ttl)).unwrap_or(30);
    let mut inner = f.lock();
    let owner = f.opts.owner.clone();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let given = headers.get(NONCE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let refresh = match &m.lease {
        Some(l) if l.live() && given.as_deref() == Some(l.nonce.as_str()) => true,
        Some(l) if l.live() => {
            return error(
                StatusCode::CONFLICT,
                format!("lease currently held by {}, expires at {}", l.owner, l.expires_ms / 1000),
            );
        }
        _ => false,
    };
    let nonce = match (&m.lease, refresh) {
        (Some(l), true) => l.nonce.clone(),
        _ => format!("{:016x}", rand::random::<u64>()),
    };
    let l = FakeLease { nonce, owner, expires_ms: now_ms() + (ttl * 1000) as i64 };
    m.lease = Some(l.clone());
    if refresh {
        inner.refreshes += 1;
    }
    lease_json(&l).into_response()
}

async fn get_lease(State(f): S, Path((app, id)): Path<(String, String)>) -> Response {
    let mut inner = f.lock();
    match find(&mut inner, &app, &id) {
        Ok(FakeMachine { lease: Some(l), .. }) if l.live() => lease_json(l).into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, "no lease"),
        Err(r) => r,
    }
}

async fn release(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.lease = None;
    Json(json!({"ok": true})).into_response()
}
