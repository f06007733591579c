//! Finding, starting and stopping the daemon of a state directory.
//!
//! The daemon outlives the command that starts it, so commands find it through the `daemon.json` it
//! writes, and trust that file only when the URL in it answers with the pid it names: a daemon killed
//! outright leaves its file behind, and its port may be another process's by then. Every request
//! carries the token the daemon wrote beside it (see [`crate::daemon::auth`]): only its owner can
//! read it.

use crate::daemon::api::Status;
use crate::daemon::{DaemonInfo, INFO_FILE};
use cutover_core::{ErrorKind, OpError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The daemon that serves one state directory (its files live in `DIR/local/`).
pub struct LocalDaemon {
    dir: PathBuf,
}

impl LocalDaemon {
    /// The daemon of the state directory `state`.
    pub fn of(state: &Path) -> Self {
        Self { dir: state.join("local") }
    }

    /// Where its files (daemon.json, daemon.log, machine logs) are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Prometheus service discovery file the daemon keeps of its running machines
    /// (`file_sd_configs`; see `daemon::fleet`'s discovery).
    pub fn targets_file(&self) -> PathBuf {
        self.dir.join(crate::daemon::fleet::TARGETS_FILE)
    }

    /// The running daemon, if there is one that answers.
    pub async fn running(&self) -> Option<DaemonInfo> {
        let info = DaemonInfo::read(&self.dir)?;
        let token = info.token.as_ref()?;
        let status = reqwest::Client::new()
            .get(format!("{}/cutover/v1/status", info.url))
            .header(reqwest::header::AUTHORIZATION, token.header_value())
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status: Status = status.json().await.ok()?;
        (status.pid == info.pid).then_some(info)
    }

    /// The running daemon, or a new one started in the background from `exe` (the `cutover` binary,
    /// as `cutover local serve`).
    pub async fn ensure_running(&self, exe: &Path) -> Result<DaemonInfo, OpError> {
        if let Some(info) = self.running().await {
            return Ok(info);
        }
        let platform = |m: String| OpError::new(ErrorKind::Platform, m);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| platform(format!("creating {}: {e}", self.dir.display())))?;
        let _ = std::fs::remove_file(self.dir.join(INFO_FILE));
        let log_path = self.dir.join("daemon.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| platform(format!("opening {}: {e}", log_path.display())))?;
        let log2 = log.try_clone().map_err(|e| platform(e.to_string()))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["local", "serve", "--dir"])
            .arg(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own session: the daemon outlives the command that started it and its terminal.
        #[cfg(unix)]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| platform(format!("starting the local daemon ({}): {e}", exe.display())))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(info) = self.running().await {
                // Reap it in the background if it ever exits while we run.
                std::thread::spawn(move || child.wait());
                return Ok(info);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(platform(format!(
                    "the local daemon exited at once ({status}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return Err(platform(format!(
                    "the local daemon did not come up within 15 s; see {}",
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the daemon and every machine it runs; `false` when none was running.
    pub async fn stop(&self) -> Result<bool, OpError> {
        let Some(info) = self.running().await else { return Ok(false) };
        let mut req = reqwest::Client::new().post(format!("{}/cutover/v1/shutdown", info.url));
        if let Some(token) = &info.token {
            req = req.header(reqwest::header::AUTHORIZATION, token.header_value());
        }
        req.timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                OpError::new(ErrorKind::Platform, format!("asking the local daemon to stop: {e}"))
            })?;
        // It stops every machine (each with its kill timeout) before it exits.
        let deadline = std::time::Instant::now() + Duration::from_secs(330);
        while cutover_core::os::process_alive(info.pid) {
            if std::time::Instant::now() > deadline {
                return Err(OpError::new(
                    ErrorKind::Timeout,
                    format!("the local daemon (pid {}) did not stop", info.pid),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(true)
    }
}
