//! The daemon's machines: records in memory, each backed by a real OS process of the app.
//!
//! A machine is a process of the app's command with its own loopback port and Fly's environment
//! (`PORT`, `FLY_MACHINE_ID`, `FLY_REGION`, `FLY_PROCESS_GROUP`, `FLY_IMAGE_REF`, `FLY_RELEASE_VERSION`).
//! Starting spawns it; stopping sends the signal, waits the timeout, then kills; its output is appended
//! to a log file per machine. Children die with the daemon (`PR_SET_PDEATHSIG`), so a killed daemon
//! leaves no orphan. Every change bumps a version on a watch channel, which is what the API's waits and
//! the proxy's routing table follow.

use super::health;
use cutover_core::{CheckSpec, CheckStatus, ErrorKind, OpError};
use cutover_machines_api::{ApiCheck, ApiMachine, CreateRequest, PROCESS_GROUP_KEY, RELEASE_VERSION_KEY};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How an app's machines are run: sent by `cutover` (from fly.toml's `[cutover.local]`) before a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The app's command and its arguments; `{image}` in an argument is replaced by the release's image.
    pub command: Vec<String>,
    /// Working directory of the command.
    pub cwd: PathBuf,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// The proxy's public loopback port (0: any free port).
    #[serde(default)]
    pub port: u16,
    /// `tcp` for plain TCP services; HTTP otherwise.
    #[serde(default)]
    pub tcp: bool,
    /// Signal and timeout for stops that do not name their own (fly.toml `kill_signal`, `kill_timeout`).
    pub kill_signal: String,
    pub kill_timeout_ms: u64,
}

/// A routable machine, for the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub machine_id: String,
    pub version: u64,
    pub port: u16,
}

/// Receives an app's routable machines whenever they change, before the change is acknowledged.
pub trait RouteSink: Send + Sync {
    fn set_routes(&self, app: &str, routes: Vec<Route>);
}

/// A lease on a machine (Fly's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub nonce: String,
    pub expires_at: i64,
    pub owner: String,
    pub version: String,
}

#[derive(Debug)]
struct LocalMachine {
    app: String,
    api: ApiMachine,
    port: u16,
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

struct State {
    apps: BTreeMap<String, AppSpec>,
    machines: BTreeMap<String, LocalMachine>,
    next: u64,
}

/// All machines of all apps the daemon runs.
pub struct Fleet {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    logs: PathBuf,
    routes: Arc<dyn RouteSink>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> OpError {
    OpError::new(kind, message)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Fleet {
    pub fn new(logs: PathBuf, routes: Arc<dyn RouteSink>) -> Arc<Self> {
        let (changes, _) = watch::channel(0);
        Arc::new(Self {
            state: Mutex::new(State { apps: BTreeMap::new(), machines: BTreeMap::new(), next: 0 }),
            changes,
            logs,
            routes,
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
    /// answers) and wake every waiter.
    fn changed(&self, st: &State, app: &str) {
        let routes = routes_of(st, app);
        self.routes.set_routes(app, routes);
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

    pub fn spec(&self, app: &str) -> Option<AppSpec> {
        self.lock().apps.get(app).cloned()
    }

    pub fn apps(&self) -> Vec<String> {
        self.lock().apps.keys().cloned().collect()
    }

    pub fn list(&self, app: &str) -> Vec<ApiMachine> {
        self.lock().machines.values().filter(|m| machine_app(m) == app).map(|m| m.api.clone()).collect()
    }

    pub fn get(&self, app: &str, id: &str) -> Result<ApiMachine, OpError> {
        let st = self.lock();
        find(&st, app, id).map(|m| m.api.clone())
    }

    /// The port a machine's process listens on.
    pub fn port_of(&self, app: &str, id: &str) -> Result<u16, OpError> {
        let st = self.lock();
        find(&st, app, id).map(|m| m.port)
    }

    /// Check a lease nonce for a mutating call: a live lease held by someone else refuses it.
    pub fn check_lease(&self, app: &str, id: &str, nonce: Option<&str>) -> Result<(), OpError> {
        let st = self.lock();
        let m = find(&st, app, id)?;
        match &m.lease {
            Some(l) if l.expires_at > unix_now() && nonce != Some(l.nonce.as_str()) => Err(err(
                ErrorKind::Conflict,
                format!("machine {id} is leased by {} until {}", l.owner, l.expires_at),
            )),
            _ => Ok(()),
        }
    }

    /// Create a machine; it starts unless `skip_launch`. A command that cannot be spawned is an error,
    /// and the machine is not kept.
    pub fn create(self: &Arc<Self>, app: &str, req: CreateRequest) -> Result<ApiMachine, OpError> {
        let port = free_port().map_err(|e| err(ErrorKind::Platform, format!("no free port: {e}")))?;
        let id = {
            let mut st = self.lock();
            if !st.apps.contains_key(app) {
                return Err(err(
                    ErrorKind::NotFound,
                    format!("app {app} is not registered with this daemon (cutover registers it on deploy)"),
                ));
            }
            st.next += 1;
            let id =
                format!("{:014x}", (u64::from(std::process::id()) << 24) ^ st.next.wrapping_mul(0x9e37_79b9));
            let mut config = req.config;
            config.metadata.entry(PROCESS_GROUP_KEY.into()).or_insert_with(|| "app".into());
            let region = if req.region.is_empty() { "local".to_string() } else { req.region };
            let name = if req.name.is_empty() { format!("{app}-{}", &id[id.len() - 6..]) } else { req.name };
            let now = now_rfc3339();
            let api = ApiMachine {
                id: id.clone(),
                name,
                state: "created".into(),
                region,
                instance_id: format!("{:x}", st.next),
                private_ip: "127.0.0.1".into(),
                config,
                checks: vec![],
                cordoned: req.skip_service_registration,
                created_at: now.clone(),
                updated_at: now,
            };
            st.machines.insert(
                id.clone(),
                LocalMachine {
                    app: app.to_string(),
                    api,
                    port,
                    pid: None,
                    run: 0,
                    stopping: false,
                    last_exit: None,
                    start_error: None,
                    failures: BTreeMap::new(),
                    lease: None,
                },
            );
            self.changed(&st, app);
            id
        };
        if !req.skip_launch
            && let Err(e) = self.start(app, &id)
        {
            self.lock().machines.remove(&id);
            return Err(e);
        }
        self.get(app, &id)
    }

    /// Replace a machine's config (image, metadata, env): a running machine is stopped (its app's
    /// signal and timeout) and started again on the new config, in the background.
    pub fn update(self: &Arc<Self>, app: &str, id: &str, req: CreateRequest) -> Result<ApiMachine, OpError> {
        let (was_running, spec) = {
            let mut st = self.lock();
            let spec = st.apps.get(app).cloned();
            // A new instance id per version of the machine, as Fly gives.
            st.next += 1;
            let instance = format!("{:x}", st.next);
            let m = find_mut(&mut st, app, id)?;
            let mut config = req.config;
            for key in [PROCESS_GROUP_KEY, RELEASE_VERSION_KEY] {
                if !config.metadata.contains_key(key)
                    && let Some(v) = m.api.config.metadata.get(key)
                {
                    config.metadata.insert(key.into(), v.clone());
                }
            }
            m.api.config = config;
            m.api.instance_id = instance;
            let running = m.pid.is_some();
            if running {
                m.api.state = "replacing".into();
            }
            m.api.updated_at = now_rfc3339();
            self.changed(&st, app);
            (running, spec)
        };
        let spec = spec.ok_or_else(|| err(ErrorKind::NotFound, format!("app {app} is not registered")))?;
        if was_running {
            let fleet = self.clone();
            let (app, id) = (app.to_string(), id.to_string());
            tokio::spawn(async move {
                let timeout = Duration::from_millis(spec.kill_timeout_ms);
                fleet.stop_and_wait(&app, &id, &spec.kill_signal, timeout).await;
                if let Err(e) = fleet.start(&app, &id) {
                    // Failed, not stopped: whoever waits for it to start hears at once.
                    tracing::warn!("update of {id}: {e}");
                    fleet.mark_failed(&app, &id, &e.message);
                }
            });
        } else if !req.skip_launch {
            self.start(app, id)?;
        }
        self.get(app, id)
    }

    /// Spawn the machine's process. `started` as soon as the process runs; the checks say when it is
    /// ready.
    pub fn start(self: &Arc<Self>, app: &str, id: &str) -> Result<(), OpError> {
        let mut st = self.lock();
        let spec = st
            .apps
            .get(app)
            .cloned()
            .ok_or_else(|| err(ErrorKind::NotFound, format!("app {app} is not registered")))?;
        let m = find_mut(&mut st, app, id)?;
        if m.pid.is_some() {
            return Ok(());
        }
        let image = m.api.config.image.clone();
        let mut cmd = tokio::process::Command::new(&spec.command[0]);
        cmd.args(spec.command[1..].iter().map(|a| a.replace("{image}", &image)))
            .current_dir(&spec.cwd)
            .envs(&spec.env)
            .envs(&m.api.config.env)
            .env("PORT", m.port.to_string())
            .env("FLY_MACHINE_ID", &m.api.id)
            .env("FLY_APP_NAME", app)
            .env("FLY_REGION", &m.api.region)
            .env(
                "FLY_PROCESS_GROUP",
                m.api.config.metadata.get(PROCESS_GROUP_KEY).cloned().unwrap_or_default(),
            )
            .env("FLY_IMAGE_REF", &image)
            .env(
                "FLY_RELEASE_VERSION",
                m.api.config.metadata.get(RELEASE_VERSION_KEY).cloned().unwrap_or_default(),
            )
            .stdin(std::process::Stdio::null())
            .kill_on_drop(false);
        let log = self.log_file(app, id).map_err(|e| err(ErrorKind::Platform, format!("log file: {e}")))?;
        let log2 = log.try_clone().map_err(|e| err(ErrorKind::Platform, format!("log file: {e}")))?;
        cmd.stdout(log).stderr(log2);
        // The child dies with the daemon: no orphan survives a killed daemon.
        #[cfg(target_os = "linux")]
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            err(
                ErrorKind::Invalid,
                format!(
                    "cannot run the app's command `{}` (in {}): {e}; check `[cutover.local] command` in fly.toml",
                    spec.command.join(" "),
                    spec.cwd.display()
                ),
            )
        })?;
        m.pid = child.id();
        m.start_error = None;
        m.run += 1;
        m.stopping = false;
        m.failures.clear();
        m.api.state = "started".into();
        m.api.updated_at = now_rfc3339();
        m.api.checks = spec
            .checks
            .iter()
            .map(|c| ApiCheck {
                name: c.name.clone(),
                status: "warning".into(),
                output: "waiting for the first check result".into(),
                updated_at: now_rfc3339(),
            })
            .collect();
        let run = m.run;
        let port = m.port;
        self.changed(&st, app);
        drop(st);

        let fleet = self.clone();
        let (a, i) = (app.to_string(), id.to_string());
        tokio::spawn(async move {
            let status = child.wait().await;
            fleet.exited(&a, &i, run, status.ok().and_then(|s| s.code()));
        });
        for (index, check) in spec.checks.into_iter().enumerate() {
            let fleet = self.clone();
            let (a, i) = (app.to_string(), id.to_string());
            tokio::spawn(async move { health::run(fleet, a, i, run, index, check, port).await });
        }
        Ok(())
    }

    /// The process of `run` exited.
    fn exited(&self, app: &str, id: &str, run: u64, code: Option<i32>) {
        let mut st = self.lock();
        let Ok(m) = find_mut(&mut st, app, id) else { return };
        if m.run != run {
            return;
        }
        m.pid = None;
        m.last_exit = code;
        m.api.state = if m.stopping || code == Some(0) { "stopped" } else { "failed" }.into();
        for c in &mut m.api.checks {
            c.status = "critical".into();
            c.output = match code {
                Some(code) => format!("the process exited with code {code}"),
                None => "the process was killed by a signal".into(),
            };
        }
        m.api.updated_at = now_rfc3339();
        self.changed(&st, app);
    }

    /// A machine whose process could not be started.
    fn mark_failed(&self, app: &str, id: &str, why: &str) {
        let mut st = self.lock();
        let Ok(m) = find_mut(&mut st, app, id) else { return };
        m.api.state = "failed".into();
        m.start_error = Some(why.to_string());
        m.api.updated_at = now_rfc3339();
        self.changed(&st, app);
    }

    /// Whether check results of `run` are still wanted.
    pub fn is_current(&self, app: &str, id: &str, run: u64) -> bool {
        let st = self.lock();
        find(&st, app, id).is_ok_and(|m| m.run == run && m.pid.is_some())
    }

    /// Record one check result of `run`.
    pub fn check_result(
        &self,
        app: &str,
        id: &str,
        run: u64,
        index: usize,
        status: CheckStatus,
        output: String,
    ) {
        let mut st = self.lock();
        let Ok(m) = find_mut(&mut st, app, id) else { return };
        if m.run != run || m.pid.is_none() {
            return;
        }
        let Some(check) = m.api.checks.get_mut(index) else { return };
        let name = check.name.clone();
        let before = check.status.clone();
        check.status = match status {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
        .into();
        check.output = output;
        check.updated_at = now_rfc3339();
        // Only verdicts count: a `warning` (no result yet, or inside the grace period) is not a failure.
        let failures = m.failures.entry(name).or_default();
        *failures = if status == CheckStatus::Critical { *failures + 1 } else { 0 };
        if before != m.api.checks[index].status {
            self.changed(&st, app);
        } else {
            // Same status: only wake waiters counting failures.
            self.changes.send_modify(|v| *v += 1);
        }
    }

    /// Ask a machine to stop: the signal now, a kill after `timeout`.
    pub fn stop(
        self: &Arc<Self>,
        app: &str,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), OpError> {
        let sig = signal_number(signal).ok_or_else(|| {
            err(ErrorKind::Invalid, format!("unknown signal `{signal}` (e.g. SIGINT, SIGTERM)"))
        })?;
        let (pid, run) = {
            let mut st = self.lock();
            let m = find_mut(&mut st, app, id)?;
            let Some(pid) = m.pid else { return Ok(()) };
            m.stopping = true;
            m.api.state = "stopping".into();
            m.api.updated_at = now_rfc3339();
            let run = m.run;
            self.changed(&st, app);
            (pid, run)
        };
        unsafe { libc::kill(pid as libc::pid_t, sig) };
        let fleet = self.clone();
        let (a, i) = (app.to_string(), id.to_string());
        tokio::spawn(async move {
            let mut changes = fleet.subscribe();
            let deadline = tokio::time::Instant::now() + timeout;
            while fleet.is_current(&a, &i, run) {
                if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                    tracing::info!("{i} did not stop within {timeout:?} of {sig}; killing it");
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    break;
                }
            }
        });
        Ok(())
    }

    /// Stop and wait until the process is gone.
    pub async fn stop_and_wait(self: &Arc<Self>, app: &str, id: &str, signal: &str, timeout: Duration) {
        let run = {
            let st = self.lock();
            match find(&st, app, id) {
                Ok(m) => m.run,
                Err(_) => return,
            }
        };
        let mut changes = self.subscribe();
        if self.stop(app, id, signal, timeout).is_err() {
            return;
        }
        while self.is_current(app, id, run) {
            let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
        }
    }

    /// Destroy a machine; a running one only with `kill`.
    pub async fn destroy(self: &Arc<Self>, app: &str, id: &str, kill: bool) -> Result<(), OpError> {
        let running = {
            let st = self.lock();
            find(&st, app, id)?.pid.is_some()
        };
        if running {
            if !kill {
                return Err(err(
                    ErrorKind::Conflict,
                    format!("machine {id} is running: stop it first or destroy with kill=true"),
                ));
            }
            self.stop_and_wait(app, id, "SIGKILL", Duration::from_secs(5)).await;
        }
        let mut st = self.lock();
        st.machines.remove(id);
        self.changed(&st, app);
        Ok(())
    }

    pub fn set_cordoned(&self, app: &str, id: &str, cordoned: bool) -> Result<(), OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        m.api.cordoned = cordoned;
        m.api.updated_at = now_rfc3339();
        self.changed(&st, app);
        Ok(())
    }

    pub fn set_metadata(&self, app: &str, id: &str, key: &str, value: Option<&str>) -> Result<(), OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        match value {
            Some(v) => m.api.config.metadata.insert(key.to_string(), v.to_string()),
            None => m.api.config.metadata.remove(key),
        };
        self.changed(&st, app);
        Ok(())
    }

    /// Take or refresh a lease: a live lease of another owner is a conflict.
    pub fn lease(
        &self,
        app: &str,
        id: &str,
        ttl: Duration,
        owner: &str,
        nonce: Option<&str>,
    ) -> Result<Lease, OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        if let Some(l) = &m.lease
            && l.expires_at > unix_now()
            && nonce != Some(l.nonce.as_str())
        {
            return Err(err(
                ErrorKind::Conflict,
                format!("machine {id} is leased by {} until {}", l.owner, l.expires_at),
            ));
        }
        let lease = Lease {
            nonce: nonce.map(str::to_string).unwrap_or_else(|| format!("{:016x}", rand::random::<u64>())),
            expires_at: unix_now() + ttl.as_secs().max(1) as i64,
            owner: owner.to_string(),
            version: format!("{:x}", rand::random::<u32>()),
        };
        m.lease = Some(lease.clone());
        Ok(lease)
    }

    pub fn lease_of(&self, app: &str, id: &str) -> Result<Option<Lease>, OpError> {
        let st = self.lock();
        Ok(find(&st, app, id)?.lease.clone().filter(|l| l.expires_at > unix_now()))
    }

    pub fn release_lease(&self, app: &str, id: &str, nonce: Option<&str>) -> Result<(), OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        match &m.lease {
            // Only the holder (who has the nonce) may release a live lease.
            Some(l) if nonce != Some(l.nonce.as_str()) && l.expires_at > unix_now() => {
                Err(err(ErrorKind::Conflict, format!("machine {id} is leased by {}", l.owner)))
            }
            _ => {
                m.lease = None;
                Ok(())
            }
        }
    }

    /// Consecutive failures of the machine's checks and whether its process is gone.
    pub fn health(&self, app: &str, id: &str) -> Result<(Vec<ApiCheck>, u32, Option<String>), OpError> {
        let st = self.lock();
        let m = find(&st, app, id)?;
        let worst = m.failures.values().copied().max().unwrap_or(0);
        let gone = m.pid.is_none().then(|| match (&m.start_error, m.last_exit) {
            (Some(why), _) => format!("the machine is {}: {why}", m.api.state),
            (None, Some(code)) => {
                format!("the machine is {} (its process exited with code {code})", m.api.state)
            }
            (None, None) => format!("the machine is {}", m.api.state),
        });
        Ok((m.api.checks.clone(), worst, gone))
    }

    /// Stop every machine of every app (daemon shutdown), each with its app's signal and timeout.
    pub async fn stop_all(self: &Arc<Self>) {
        let todo: Vec<(String, String, String, Duration)> = {
            let st = self.lock();
            st.machines
                .values()
                .filter(|m| m.pid.is_some())
                .map(|m| {
                    let app = machine_app(m).to_string();
                    let spec = st.apps.get(&app);
                    (
                        app,
                        m.api.id.clone(),
                        spec.map(|s| s.kill_signal.clone()).unwrap_or_else(|| "SIGINT".into()),
                        Duration::from_millis(spec.map(|s| s.kill_timeout_ms).unwrap_or(5000)),
                    )
                })
                .collect()
        };
        let stops = todo.iter().map(|(a, i, s, t)| self.stop_and_wait(a, i, s, *t));
        futures::future::join_all(stops).await;
    }

    fn log_file(&self, app: &str, id: &str) -> std::io::Result<std::fs::File> {
        let dir = self.logs.join(app);
        std::fs::create_dir_all(&dir)?;
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{id}.log")))
    }

    /// Where a machine's output goes.
    pub fn log_path(&self, app: &str, id: &str) -> PathBuf {
        self.logs.join(app).join(format!("{id}.log"))
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

/// Started, uncordoned and passing every check.
fn routes_of(st: &State, app: &str) -> Vec<Route> {
    st.machines
        .values()
        .filter(|m| machine_app(m) == app)
        .filter(|m| m.pid.is_some() && m.api.state == "started" && !m.api.cordoned)
        .filter(|m| m.api.checks.iter().all(|c| c.status == "passing"))
        .map(|m| Route {
            machine_id: m.api.id.clone(),
            version: m.api.config.metadata.get(RELEASE_VERSION_KEY).and_then(|v| v.parse().ok()).unwrap_or(0),
            port: m.port,
        })
        .collect()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A signal by name (`SIGINT`, `INT`, `SIGTERM`, …).
pub fn signal_number(name: &str) -> Option<i32> {
    Some(match name.trim_start_matches("SIG") {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "HUP" => libc::SIGHUP,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return None,
    })
}
