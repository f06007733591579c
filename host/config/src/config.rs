//! The resolved configuration of one app: fly.toml's keys with flyctl's defaults filled in, cutover's
//! options, and the command line's overrides on top. Everything after loading reads this, never the
//! files, so a deploy, a dry run and a resume agree on what the config says.

use crate::options::CutoverOptions;
use crate::strategy::StrategyRef;
use cutover_core::contract::MaxUnavailable;
use cutover_core::{CheckSpec, Release, ReleaseCommand, ReleaseVm};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The resolved configuration of one app.
#[derive(Debug, Clone)]
pub struct Config {
    /// The fly.toml this came from.
    pub path: PathBuf,
    /// `app`: the app every machine belongs to (required, as flyctl requires it).
    pub app: String,
    /// `[build] image`.
    pub image: Option<String>,
    /// `[deploy] strategy`: a built-in name or a path to a `.wasm` (resolved against the config's folder).
    pub strategy: StrategyRef,
    /// `[deploy] max_unavailable`: how much of each process group may be out of service at once.
    pub max_unavailable: MaxUnavailable,
    /// `[deploy] wait_timeout`: how long a machine may take to start and pass its checks.
    pub wait_timeout: Duration,
    /// `[deploy] release_command`: run once, on the new release, before any machine is updated.
    pub release_command: Option<String>,
    /// The release command split into arguments as a shell would (empty when there is none).
    pub release_command_args: Vec<String>,
    /// `[deploy] release_command_timeout`: how long the release command may run (5m by default, as
    /// flyctl).
    pub release_command_timeout: Duration,
    /// `[deploy.release_command_vm]`: the size of the release command's machine, when set.
    pub release_command_vm: Option<ReleaseVm>,
    /// The command line's `--skip-release-command`: deploy without running the release command.
    pub skip_release_command: bool,
    /// `kill_signal`: what a machine's process gets when the machine is stopped.
    pub kill_signal: String,
    /// `kill_timeout`: how long a stopping machine has before it is killed (at most 5m, as on Fly).
    pub kill_timeout: Duration,
    /// Every health check of the app, from each of the forms fly.toml has, in file order.
    pub checks: Vec<CheckSpec>,
    /// Process groups from `[processes]` (`app` when there are none).
    pub process_groups: Vec<String>,
    /// `[mounts]` is present: machines have volumes.
    pub has_volumes: bool,
    /// cutover's own options (`[cutover]` or `cutover.toml`).
    pub cutover: CutoverOptions,
    /// Where each cutover option came from, for error messages (`fly.toml [cutover]` or `cutover.toml`).
    pub cutover_source: PathBuf,
    /// Keys that were not understood.
    pub warnings: Vec<String>,
}

impl Config {
    /// The release command to run before `release` reaches any machine, if fly.toml has one.
    pub fn release_command_for(&self, release: &Release) -> Option<ReleaseCommand> {
        let command = self.release_command.clone()?;
        Some(ReleaseCommand {
            command,
            args: self.release_command_args.clone(),
            release: release.clone(),
            env: Default::default(),
            timeout: self.release_command_timeout,
            vm: self.release_command_vm.clone(),
        })
    }

    /// Apply the command line's `--strategy` (a built-in name, or a `.wasm` path relative to `cwd`)
    /// and `--image` over what the files say: from here on the config is what the deploy uses.
    pub fn with_overrides(mut self, strategy: Option<&str>, image: Option<String>, cwd: &Path) -> Self {
        if let Some(s) = strategy {
            self.strategy = StrategyRef::parse(s, cwd);
        }
        if image.is_some() {
            self.image = image;
        }
        self
    }
}
