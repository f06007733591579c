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
//! This module is the fake's state and what tests arrange and inspect; `routes` is the HTTP API over it.

mod release;
mod routes;

pub use release::{ReleaseBehaviour, ReleaseRecord};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cutover::machines_api::{ApiCheck, ApiMachine, MachineConfig};
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
