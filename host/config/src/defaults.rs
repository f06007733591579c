//! Fly's defaults, from flyctl: what a deploy uses when fly.toml leaves a key out, so the same file
//! deploys the same way with flyctl and with cutover.

use std::time::Duration;

/// `[deploy] max_unavailable` when unset: a third of each process group at once.
pub const DEFAULT_MAX_UNAVAILABLE: f64 = 0.33;
/// `[deploy] wait_timeout` when unset: how long a machine may take to start and pass its checks.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// `[deploy] release_command_timeout` when unset (flyctl's default).
pub const DEFAULT_RELEASE_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// `kill_signal` when unset: the signal a machine's process gets when it is stopped.
pub const DEFAULT_KILL_SIGNAL: &str = "SIGINT";
/// `kill_timeout` when unset: how long a stopping machine has before it is killed.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// `[cutover] concurrency` when unset: flyctl changes up to 8 machines at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
