//! The daemon's machines: records in memory, each backed by a real OS process of the app.
//!
//! A machine is a process of the app's command with its own loopback port and Fly's environment
//! (`PORT`, `FLY_MACHINE_ID`, `FLY_REGION`, `FLY_PROCESS_GROUP`, `FLY_IMAGE_REF`, `FLY_RELEASE_VERSION`).
//! Starting spawns it; stopping sends the signal, waits the timeout, then kills; its output is appended
//! to a log file per machine. Children die with the daemon (`PR_SET_PDEATHSIG`), so a killed daemon
//! leaves no orphan; each runs in a session of its own, so the kernel shares the CPU between
//! machines and the proxy as between separate VMs (autogroups). Every change bumps a version on a
//! watch channel, which is what the API's waits and the proxy's routing table follow.
//!
//! The fleet's parts, one concern each, all methods of [`Fleet`] over its one locked `State`:
//!
//! - `spec`: how an app's machines are run ([`AppSpec`]).
//! - `machines`: creating, updating, destroying, cordoning machines, their metadata.
//! - `process`: starting and stopping a machine's process, and its logs.
//! - `checks`: health check results, as the prober reports them.
//! - `leases`: Fly's machine leases.
//! - `routes`: the routable machines, handed to the proxy on every change.
//! - `discovery`: the running machines as Prometheus scrape targets, a file rewritten on every change.

mod checks;
mod discovery;
mod leases;
mod machines;
mod process;
mod routes;
mod spec;

use cutover_core::{ErrorKind, OpError};
use cutover_machines_api::ApiMachine;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::watch;

use discovery::Discovery;
pub use discovery::TARGETS_FILE;
pub use leases::Lease;
pub use process::signal_number;
use routes::routes_of;
pub use routes::{Route, RouteSink};
pub use spec::AppSpec;

/// One machine: its record as the API shows it, and its process.
#[derive(Debug)]
struct LocalMachine {
    app: String,
    api: ApiMachine,
    /// Its own loopback port, given at creation and kept across restarts.
    port: u16,
    /// The running process, if any.
    pid: Option<u32>,
    /// Bumped on every start: exit watchers and checkers of an older run stand down.
    run: u64,
    /// The last stop was asked for (an exit is then `stopped`, not `failed`).
    stopping: bool,
    last_exit: Option<i32>,
    /// Why the last start failed, when it did.
    start_error: Option<String>,
    /// Consecutive failures per check, for `wait-healthy`'s verdict.
    failures: BTreeMap<String, u32>,
    lease: Option<Lease>,
}

/// Everything the fleet knows, behind one lock: every change is made and routed in one step.
struct State {
    apps: BTreeMap<String, AppSpec>,
    /// By machine id (ids are unique across apps).
    machines: BTreeMap<String, LocalMachine>,
    /// Bumped for every machine id and instance id handed out.
    next: u64,
}

/// All machines of all apps the daemon runs.
pub struct Fleet {
    state: Mutex<State>,
    /// Bumped on every change: what the API's waits follow.
    changes: watch::Sender<u64>,
    /// Where machines' output goes: `logs/APP/ID.log`.
    logs: PathBuf,
    routes: Arc<dyn RouteSink>,
    /// The Prometheus service discovery file, kept up to date by [`Fleet::changed`].
    discovery: Discovery,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> OpError {
    OpError::new(kind, message)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Fleet {
    /// An empty fleet that writes machine logs under `logs`, hands routes to `routes` (the daemon's
    /// proxies) and keeps the Prometheus service discovery file `targets` up to date.
    pub fn new(logs: PathBuf, routes: Arc<dyn RouteSink>, targets: PathBuf) -> Arc<Self> {
        let (changes, _) = watch::channel(0);
        Arc::new(Self {
            state: Mutex::new(State { apps: BTreeMap::new(), machines: BTreeMap::new(), next: 0 }),
            changes,
            logs,
            routes,
            discovery: Discovery::new(targets),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribe to changes (any machine, any app).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Record a change: recompute `app`'s routes (synchronously, so the proxy has them before the API
    /// answers), rewrite the scrape targets if they changed, and wake every waiter.
    fn changed(&self, st: &State, app: &str) {
        let routes = routes_of(st, app);
        self.routes.set_routes(app, routes);
        self.discovery.update(st);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Register or replace how `app` runs.
    pub fn register(&self, app: &str, spec: AppSpec) -> Result<(), OpError> {
        if spec.command.is_empty() {
            return Err(err(ErrorKind::Invalid, "the app's command is empty"));
        }
        let mut st = self.lock();
        st.apps.insert(app.to_string(), spec);
        self.changed(&st, app);
        Ok(())
    }

    /// How `app` runs, once registered.
    pub fn spec(&self, app: &str) -> Option<AppSpec> {
        self.lock().apps.get(app).cloned()
    }

    /// Every registered app.
    pub fn apps(&self) -> Vec<String> {
        self.lock().apps.keys().cloned().collect()
    }

    /// Every machine of `app`, in the API's shape.
    pub fn list(&self, app: &str) -> Vec<ApiMachine> {
        self.lock().machines.values().filter(|m| machine_app(m) == app).map(|m| m.api.clone()).collect()
    }

    /// One machine of `app`; `NotFound` for a machine of another app too.
    pub fn get(&self, app: &str, id: &str) -> Result<ApiMachine, OpError> {
        let st = self.lock();
        find(&st, app, id).map(|m| m.api.clone())
    }

    /// The port a machine's process listens on.
    pub fn port_of(&self, app: &str, id: &str) -> Result<u16, OpError> {
        let st = self.lock();
        find(&st, app, id).map(|m| m.port)
    }
}

fn machine_app(m: &LocalMachine) -> &str {
    &m.app
}

fn find<'a>(st: &'a State, app: &str, id: &str) -> Result<&'a LocalMachine, OpError> {
    st.machines
        .get(id)
        .filter(|m| machine_app(m) == app)
        .ok_or_else(|| err(ErrorKind::NotFound, format!("machine {id} is not part of app {app}")))
}

fn find_mut<'a>(st: &'a mut State, app: &str, id: &str) -> Result<&'a mut LocalMachine, OpError> {
    st.machines
        .get_mut(id)
        .filter(|m| machine_app(m) == app)
        .ok_or_else(|| err(ErrorKind::NotFound, format!("machine {id} is not part of app {app}")))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
