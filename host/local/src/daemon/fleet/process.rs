//! A machine's process: spawned with Fly's environment on its own loopback port, its output appended
//! to a log file, watched until it exits, stopped with a signal and then killed after a timeout; the
//! signals go to every process it started, and what is left of them ends when it exits.
//! Starting a process also starts its health checks (`health`), which report back through
//! [`CheckOf`].

use super::checks::CheckOf;
use super::{Fleet, err, find, find_mut, machine_app, now_rfc3339};
use crate::daemon::health;
use cutover_core::{ErrorKind, OpError};
use cutover_machines_api::{ApiCheck, PROCESS_GROUP_KEY, RELEASE_VERSION_KEY};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

impl Fleet {
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
        // The child dies with the daemon: no orphan survives a killed daemon. And it runs in a
        // session of its own, as a Fly machine is a VM of its own: with the kernel's autogroups
        // (on by default), the CPU is then shared between each machine and the proxy, not between
        // threads of one group holding the proxy and every machine, where a busy app takes the
        // proxy's time (measured in BENCHMARKS.md, issue 20).
        #[cfg(target_os = "linux")]
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setsid() < 0 {
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
        let pid = child.id();
        tokio::spawn(async move {
            let status = child.wait().await;
            // What it started ends with it, as a Fly machine's processes end with its VM. The id
            // cannot name another group yet: while anything is left in this one it is taken, and a
            // reaped id comes back only after the kernel has cycled through all the others.
            if let Some(pid) = pid {
                signal_machine(pid, libc::SIGKILL);
            }
            fleet.exited(&a, &i, run, status.ok().and_then(|s| s.code()));
        });
        for (index, check) in spec.checks.into_iter().enumerate() {
            let report =
                CheckOf { fleet: self.clone(), app: app.to_string(), id: id.to_string(), run, index };
            tokio::spawn(health::run(check, port, report));
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
    pub(super) fn mark_failed(&self, app: &str, id: &str, why: &str) {
        let mut st = self.lock();
        let Ok(m) = find_mut(&mut st, app, id) else { return };
        m.api.state = "failed".into();
        m.start_error = Some(why.to_string());
        m.api.updated_at = now_rfc3339();
        self.changed(&st, app);
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
        signal_machine(pid, sig);
        let fleet = self.clone();
        let (a, i) = (app.to_string(), id.to_string());
        tokio::spawn(async move {
            let mut changes = fleet.subscribe();
            let deadline = tokio::time::Instant::now() + timeout;
            while fleet.is_current(&a, &i, run) {
                if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                    tracing::info!("{i} did not stop within {timeout:?} of {sig}; killing it");
                    signal_machine(pid, libc::SIGKILL);
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

/// Sends `sig` to a machine's processes: on Linux its whole process group (the machine's process
/// leads a session of its own, so the group holds everything it started that did not leave it), as
/// stopping a Fly machine stops every process in its VM; elsewhere the machine's process alone.
fn signal_machine(pid: u32, sig: libc::c_int) {
    #[cfg(target_os = "linux")]
    let target = -(pid as libc::pid_t);
    #[cfg(not(target_os = "linux"))]
    let target = pid as libc::pid_t;
    // SAFETY: kill(2) takes plain integers.
    unsafe { libc::kill(target, sig) };
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
