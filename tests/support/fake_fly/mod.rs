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
//!
//! Like the real API it can lag (`FakeOptions::lag`): for that long after an update, reads and waits
//! that do not name an instance still see the old one, `started` with passing checks; a wait that
//! names the new instance (`version` or `instance_id`) waits for it. Machines on a host that cannot be
//! reached (`Fake::make_unreachable`) are served as Fly serves them: `config: null`,
//! `incomplete_config`, `host_status: "unreachable"`. What happened to each instance (updated,
//! started and passing, put in rotation) is kept in `Fake::history`, for tests to check the order.
//!
//! This module is the fake's state and what tests arrange and inspect; `routes` is the HTTP API over it.

mod release;
mod routes;

pub use release::{ReleaseBehaviour, ReleaseRecord};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cutover::machines_api::{
    ApiCheck, ApiMachine, EventRequest, ExitEvent, ImageRef, MachineConfig, MachineEvent,
};
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
    /// How long after an update reads and unversioned waits still see the old instance.
    pub lag: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            token: "test-token".into(),
            owner: "deployer@example.com".into(),
            wait_cap: Duration::from_millis(300),
            boot: Duration::from_millis(40),
            stop: Duration::from_millis(20),
            lag: Duration::ZERO,
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
    /// What reads still report, until when, after an update (the API's lag).
    stale: Option<(ApiMachine, std::time::Instant)>,
    /// Served as on an unreachable host.
    pub unreachable: bool,
}

impl FakeMachine {
    fn new(app: &str, api: ApiMachine) -> Self {
        Self { app: app.into(), api, lease: None, generation: 0, stale: None, unreachable: false }
    }

    /// The machine as reads and unversioned waits see it: the old instance while the API lags.
    pub fn view(&self) -> &ApiMachine {
        match &self.stale {
            Some((old, until)) if std::time::Instant::now() < *until => old,
            _ => &self.api,
        }
    }

    /// Its JSON as the API serves it.
    pub fn wire(&self) -> serde_json::Value {
        let mut api = self.view().clone();
        api.image_ref = Some(image_ref(&api.config.image));
        let mut v = serde_json::to_value(&api).unwrap();
        if self.unreachable {
            let config = v["config"].take();
            v["incomplete_config"] = config;
            v["config"] = serde_json::Value::Null;
            v["host_status"] = "unreachable".into();
            v["checks"] = serde_json::Value::Null;
        } else {
            v["host_status"] = "ok".into();
        }
        v
    }
}

/// What happened to a machine's instance, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    /// An update made `instance`.
    Updated { id: String, instance: String },
    /// `instance` was started with every check passing.
    Passed { id: String, instance: String },
    /// The machine was put in rotation while on `instance`.
    Uncordoned { id: String, instance: String },
    /// A machine was created on `instance`, in rotation at once when `routable`.
    Created { id: String, instance: String, routable: bool },
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
    history: Vec<Happened>,
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
    /// How release command machines behave (see `release`).
    pub release: Mutex<ReleaseBehaviour>,
    release_record: Mutex<ReleaseRecord>,
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
            release: Mutex::new(ReleaseBehaviour::default()),
            release_record: Mutex::new(ReleaseRecord::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = routes::router(state.clone());
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
        let mut m = FakeMachine::new(app, api);
        event(&mut m.api, "created");
        event(&mut m.api, "started");
        inner.machines.insert(id.clone(), m);
        id
    }

    /// Set a metadata key on a machine, as another tool (or an earlier deploy) would have.
    pub fn set_metadata(&self, id: &str, key: &str, value: &str) {
        self.lock()
            .machines
            .get_mut(id)
            .expect("machine")
            .api
            .config
            .metadata
            .insert(key.into(), value.into());
        self.changed();
    }

    /// Serve a machine as on a host Fly cannot reach.
    pub fn make_unreachable(&self, id: &str) {
        self.lock().machines.get_mut(id).expect("machine").unreachable = true;
    }

    /// What happened to instances so far, in order.
    pub fn history(&self) -> Vec<Happened> {
        self.lock().history.clone()
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
                event(&mut m.api, to);
                m.api.checks = match to {
                    "started" if unhealthy.contains(&m.api.config.image) => vec![check("critical")],
                    "started" if warning.contains(&m.api.config.image) => vec![check("warning")],
                    "started" => vec![check("passing")],
                    _ => vec![check("critical")],
                };
                if to == "started" && m.api.checks.iter().all(|c| c.status == "passing") {
                    let h = Happened::Passed { id: id.clone(), instance: m.api.instance_id.clone() };
                    inner.history.push(h);
                }
                drop(inner);
                fake.changed();
            }
        });
    }

    /// Move a machine to `now`, and to `then` after `delay`.
    fn set_state(self: &Arc<Self>, m: &mut FakeMachine, now: &str, then: Option<(&'static str, Duration)>) {
        m.generation += 1;
        m.api.state = now.into();
        event(&mut m.api, now);
        if now != "started" {
            m.api.checks = vec![check("critical")];
        }
        if let Some((to, delay)) = then {
            self.transition(&m.api.id, m.generation, delay, to);
        }
    }
}

/// The event Fly records when a machine enters `state`, newest first as the API lists them: `launch`
/// on create, `update` on replace, `start`, and `exit` (code 0, asked for) on stop.
fn event(api: &mut ApiMachine, state: &str) {
    let (kind, status) = match state {
        "created" => ("launch", "created"),
        "replacing" => ("update", "replacing"),
        "starting" => return,
        "started" => ("start", "started"),
        "stopped" => ("exit", "stopped"),
        _ => return,
    };
    let request = (kind == "exit").then(|| EventRequest {
        exit_event: Some(ExitEvent { exit_code: 0, requested_stop: true, ..Default::default() }),
        ..Default::default()
    });
    let e = MachineEvent {
        kind: kind.into(),
        status: status.into(),
        source: if kind == "launch" || kind == "update" { "user" } else { "flyd" }.into(),
        timestamp: now_ms(),
        request,
    };
    api.events.insert(0, e);
}

/// `registry/repository:tag` as the API resolves it into `image_ref`.
fn image_ref(image: &str) -> ImageRef {
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (image, ""),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((r, rest)) if r.contains('.') || r.contains(':') => (r, rest),
        _ => ("docker.io", name),
    };
    ImageRef {
        registry: registry.into(),
        repository: repository.into(),
        tag: tag.into(),
        ..Default::default()
    }
}

fn check(status: &str) -> ApiCheck {
    ApiCheck { name: "http".into(), status: status.into(), output: String::new(), updated_at: String::new() }
}
