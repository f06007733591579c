//! The app's state directory: the journal, and the simulator's fleet between runs.
//!
//! By default it is `.cutover/` beside the app's fly.toml (as flyctl keeps `.fly/`), so each app has
//! its own history wherever it is deployed from; `--state-dir` or `CUTOVER_STATE_DIR` put it elsewhere
//! (CI runners, tests).

use cutover_journal::{Journal, JournalError};
use std::path::{Path, PathBuf};

/// Name of the default state directory beside the config.
pub const DEFAULT_DIR: &str = ".cutover";

/// Where one app's state lives.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// `explicit` if given, else `.cutover/` beside `config_path`.
    pub fn resolve(config_path: &Path, explicit: Option<&Path>) -> Self {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => config_path.parent().unwrap_or(Path::new(".")).join(DEFAULT_DIR),
        };
        Self { path }
    }

    /// A state directory at exactly `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open (creating) the journal.
    pub fn journal(&self) -> Result<Journal, JournalError> {
        Journal::open(&self.path)
    }

    /// Where the simulator keeps `app`'s fleet between runs.
    pub fn sim_fleet(&self, app: &str) -> PathBuf {
        self.path.join(format!("sim-{app}.json"))
    }
}
