//! The local platform's own commands: its daemon started (`cutover local up`), stopped (`local down`)
//! or run in the foreground (`local serve`, what `up` starts), and the output of the app's machines
//! (`cutover logs`).

use crate::{DeployError, Target};
use cutover_config::Config;
use cutover_core::{OpError, Platform};
use cutover_local::LocalDaemon;
use cutover_local::daemon::DaemonInfo;
use std::net::SocketAddr;
use std::path::Path;

/// Start the target's local daemon in the background, unless it runs already.
pub async fn start_daemon(target: &Target) -> Result<DaemonInfo, DeployError> {
    let state = target.state_dir()?;
    let exe = target.cutover_exe()?;
    LocalDaemon::of(state.path()).ensure_running(exe).await.map_err(DeployError::platform)
}

/// The Prometheus service discovery file the target's local daemon keeps of its running machines.
pub fn targets_file(target: &Target) -> Result<std::path::PathBuf, DeployError> {
    Ok(LocalDaemon::of(target.state_dir()?.path()).targets_file())
}

/// Stop the target's local daemon and every machine it runs; `false` when none was running.
pub async fn stop_daemon(target: &Target) -> Result<bool, DeployError> {
    LocalDaemon::of(target.state_dir()?.path()).stop().await.map_err(DeployError::platform)
}

/// Run a daemon in the foreground in `dir` (STATE_DIR/local), on a free port of 127.0.0.1.
pub async fn serve_daemon(dir: &Path) -> Result<(), DeployError> {
    cutover_local::daemon::serve(dir, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(DeployError::Daemon)
}

/// One machine's output, or why it could not be read.
pub struct MachineLog {
    /// The machine.
    pub id: String,
    /// The last bytes of its output.
    pub text: Result<String, OpError>,
}

/// The output of `machine` (default: every machine of the app), the last `tail` bytes of each.
pub async fn logs(
    config: &Config,
    target: &Target,
    machine: Option<&str>,
    tail: Option<u64>,
) -> Result<Vec<MachineLog>, DeployError> {
    let state = target.state_dir()?;
    if LocalDaemon::of(state.path()).running().await.is_none() {
        return Err(DeployError::NoDaemon { state: state.path().to_path_buf() });
    }
    let platform = target.open_local(config).await?;
    let ids: Vec<String> = match machine {
        Some(id) => vec![id.to_string()],
        None => platform
            .list()
            .await
            .map_err(|e| DeployError::Platform { kind: e.kind, message: e.to_string() })?
            .into_iter()
            .map(|m| m.id)
            .collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        let text = platform.logs(&id, tail).await;
        out.push(MachineLog { id, text });
    }
    Ok(out)
}
