//! The simulator's one error: a scenario or a kept fleet that cannot be used, naming the file and
//! what is wrong with it.

use std::path::PathBuf;

/// Why a simulator file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A scenario's text is not valid TOML, or a value is out of range (the message names the key).
    #[error("{0}")]
    Scenario(String),
    /// A scenario file's problem, with the file it is in.
    #[error("in scenario file {}: {source}", path.display())]
    InScenario {
        /// The scenario file.
        path: PathBuf,
        /// What is wrong in it.
        source: Box<SimError>,
    },
    /// A file cannot be read, written or removed; `what` says which and why it matters.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot read scenario file", "writing the simulated fleet", …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A kept fleet's file is not what this simulator writes.
    #[error("the simulated fleet {} is damaged; delete it to start afresh: {source}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        source: serde_json::Error,
    },
}

impl SimError {
    /// An I/O failure on `path` while doing `what`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
