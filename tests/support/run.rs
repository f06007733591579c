//! Running the `cutover` binary from a test, in one place: every run gets the same isolation (the
//! checkout's component cache, and a state directory of its own unless the test shares one on
//! purpose), so a test says only what differs — its arguments, config, state, working directory and
//! environment.
//!
//! ```ignore
//! let out = support::cutover(["deploy", "--json"]).config(&fly).state(&state).run();
//! assert_eq!(out.status.code(), Some(0), "{}", out.text());
//! let events = out.json_lines();
//! ```

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_cutover");

/// Flags meant for the test build that must not reach a wasm32 build a test starts.
const HOST_BUILD_FLAGS: [&str; 4] =
    ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET"];

/// Keep the test build's flags out of a cargo build of wasm32 components that `cmd` runs.
pub fn without_host_build_flags(cmd: &mut Command) {
    for var in HOST_BUILD_FLAGS {
        cmd.env_remove(var);
    }
}

/// One target directory for every strategy project the tests build with `cutover build`, so
/// wit-bindgen compiles once and reruns are quick (the projects themselves live anywhere).
fn strategy_projects_target() -> PathBuf {
    super::root().join("target").join("strategy-projects")
}

/// `cutover ARGS`, to be configured and then [run](Cutover::run).
pub fn cutover<I, S>(args: I) -> Cutover
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(EXE);
    cmd.args(args);
    Cutover::new(cmd)
}

/// `bash SCRIPT` with `$CUTOVER` naming the binary under test: a strategy project's own `test.sh`,
/// run with the same isolation as the binary itself.
pub fn script(path: impl AsRef<Path>) -> Cutover {
    let mut cmd = Command::new("bash");
    cmd.arg(path.as_ref()).env("CUTOVER", EXE);
    Cutover::new(cmd)
}

/// Where a run keeps its state (`CUTOVER_STATE_DIR`).
enum State {
    /// A temporary directory of its own, removed after the run: no journal or simulated fleet is
    /// shared with another test.
    Fresh,
    /// A directory the test names, so several runs share one app's history.
    At(PathBuf),
}

/// A run of the binary (or of a script that runs it), being configured.
pub struct Cutover {
    cmd: Command,
    state: State,
}

impl Cutover {
    fn new(mut cmd: Command) -> Self {
        cmd.env("CUTOVER_CACHE_DIR", super::cache_dir());
        Self { cmd, state: State::Fresh }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// `--config PATH`, after the arguments given so far.
    pub fn config(self, path: impl AsRef<Path>) -> Self {
        self.arg("--config").arg(path.as_ref())
    }

    /// Keep state in `dir` (created on first use) rather than in a fresh temporary directory.
    pub fn state(mut self, dir: impl AsRef<Path>) -> Self {
        self.state = State::At(dir.as_ref().to_path_buf());
        self
    }

    /// Run in `dir`.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir.as_ref());
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Clear an environment variable the test process has.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Have the journal SIGKILL the process just before it writes event `k` (none: run to the end).
    pub fn kill_at_event(self, k: Option<u64>) -> Self {
        match k {
            Some(k) => self.env(cutover::journal::KILL_AT_EVENT_ENV, k.to_string()),
            None => self,
        }
    }

    /// For `cutover build` of a strategy project: into [`strategy_projects_target`], offline (the
    /// vendored SDK and the crates already in the local cargo cache), without the test build's flags.
    pub fn offline_strategy_builds(mut self) -> Self {
        without_host_build_flags(&mut self.cmd);
        self.env("CARGO_TARGET_DIR", strategy_projects_target())
            // The dependencies are in the local cache; the test must not need the network.
            .env("CARGO_NET_OFFLINE", "true")
    }

    /// Run to the end and return what it printed and how it exited.
    pub fn run(mut self) -> Output {
        let _fresh = self.set_state();
        self.cmd.output().unwrap_or_else(|e| panic!("run {:?}: {e}", self.cmd.get_program()))
    }

    /// [`run`](Self::run) from a test inside tokio, on a blocking thread.
    pub async fn run_async(self) -> Output {
        tokio::task::spawn_blocking(move || self.run()).await.expect("the run of cutover panicked")
    }

    /// Start it with `stdout` and `stderr` as given and return the running child, for a test that
    /// reads it as it goes or acts while it waits. Its state directory must outlive it, so the test
    /// names one with [`state`](Self::state).
    pub fn spawn(mut self, stdout: Stdio, stderr: Stdio) -> Child {
        assert!(matches!(self.state, State::At(_)), "a spawned cutover needs a state directory: .state(dir)");
        self.set_state();
        self.cmd
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", self.cmd.get_program()))
    }

    /// Point `CUTOVER_STATE_DIR` at the state directory; a fresh one lives as long as the value returned.
    fn set_state(&mut self) -> Option<tempfile::TempDir> {
        match &self.state {
            State::At(dir) => {
                self.cmd.env("CUTOVER_STATE_DIR", dir);
                None
            }
            State::Fresh => {
                let dir = tempfile::tempdir().expect("a temporary state directory");
                self.cmd.env("CUTOVER_STATE_DIR", dir.path());
                Some(dir)
            }
        }
    }
}

/// Reading what a run printed.
pub trait OutputExt {
    /// Standard output, as text.
    fn stdout_text(&self) -> String;
    /// Standard error, as text.
    fn stderr_text(&self) -> String;
    /// Standard output, a newline, standard error: for failure messages, and for what a test expects
    /// on either stream.
    fn text(&self) -> String;
    /// Standard output as one JSON value a line (`--json` events).
    fn json_lines(&self) -> Vec<Value>;
    /// Standard output as one JSON document (`--json` reports).
    fn json<T: DeserializeOwned>(&self) -> T;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn text(&self) -> String {
        format!("{}\n{}", self.stdout_text(), self.stderr_text())
    }

    fn json_lines(&self) -> Vec<Value> {
        self.stdout_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event: {l}: {e}")))
            .collect()
    }

    fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the JSON expected ({e}):\n{}", self.text()))
    }
}
