//! How an app's machines are run: what `cutover` registers before a deploy.

use cutover_core::{CheckSpec, ProxyLimits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How an app's machines are run: sent by `cutover` (from fly.toml's `[cutover.local]`) before a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The app's command and its arguments; `{image}` in an argument is replaced by the release's image.
    pub command: Vec<String>,
    /// Working directory of the command.
    pub cwd: PathBuf,
    /// Environment of every machine's process; a machine's own config `env` and the variables the
    /// daemon sets (`PORT`, `FLY_*`) take precedence.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The checks a machine must pass to be routable (fly.toml's), probed against its own port.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// The proxy's public loopback port (0: any free port).
    #[serde(default)]
    pub port: u16,
    /// `tcp` for plain TCP services; HTTP otherwise.
    #[serde(default)]
    pub tcp: bool,
    /// What the app's proxy allows one client (`[cutover.local]`'s bounds).
    #[serde(default)]
    pub proxy: ProxyLimits,
    /// Signal and timeout for stops that do not name their own (fly.toml `kill_signal`, `kill_timeout`).
    pub kill_signal: String,
    /// How long such a stop waits after the signal before it kills the process, in milliseconds.
    pub kill_timeout_ms: u64,
}
