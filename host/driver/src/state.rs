//! The app's state directory: the journal, and the simulator's fleet between runs.
//!
//! By default it is `.cutover/` beside the app's fly.toml (as flyctl keeps `.fly/`), so each app has
//! its own history wherever it is deployed from; `--state-dir` or `CUTOVER_STATE_DIR` put it elsewhere
//! (CI runners, tests).

use cutover_journal::{FILE, Journal, JournalError};
use std::path::{Path, PathBuf};

/// Name of the default state directory beside the config.
pub const DEFAULT_DIR: &str = ".cutover";

/// Where one app's state lives.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    /// A shared PostgreSQL journal, when one is configured: it replaces the SQLite file.
    journal_url: Option<String>,
}

impl StateDir {
    /// `explicit` if given, else `.cutover/` beside `config_path`.
    pub fn resolve(config_path: &Path, explicit: Option<&Path>) -> Self {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => config_path.parent().unwrap_or(Path::new(".")).join(DEFAULT_DIR),
        };
        Self { path, journal_url: None }
    }

    /// A state directory at exactly `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), journal_url: None }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep the journal in the PostgreSQL database at `url` (when given) instead of the state
    /// directory's SQLite file; the simulator's fleet stays in the directory.
    pub fn with_journal(mut self, url: Option<String>) -> Self {
        self.journal_url = url;
        self
    }

    /// Open (creating) the journal: the shared one if configured, else the file in the directory.
    pub fn journal(&self) -> Result<Journal, JournalError> {
        Journal::open_at(&self.path, self.journal_url.as_deref())
    }

    /// Whether there may be a journal to read without creating one: a shared journal always, the file
    /// once a deploy wrote it.
    pub fn has_journal(&self) -> bool {
        self.journal_url.is_some() || self.path.join(FILE).exists()
    }

    /// Where the journal is, for messages (a URL's password hidden).
    pub fn journal_location(&self) -> String {
        match &self.journal_url {
            Some(url) => cutover_journal::redact_url(url),
            None => self.path.join(FILE).display().to_string(),
        }
    }

    /// Where the simulator keeps `app`'s fleet between runs.
    pub fn sim_fleet(&self, app: &str) -> PathBuf {
        self.path.join(format!("sim-{app}.json"))
    }
}
