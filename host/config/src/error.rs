//! What goes wrong reading a configuration. Every error names the file, because an app's options may
//! come from fly.toml or from `cutover.toml` beside it, and the user must know which to edit.

use std::path::PathBuf;

/// A configuration problem, with the file and key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading it failed.
        source: std::io::Error,
    },
    /// The file is not TOML, or a key has the wrong type (the TOML parser's message, which names it).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has a value of the right type that cutover cannot use.
    #[error("{}: `{key}` = {value}: expected {expected}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key, as the file spells it (`deploy.max_unavailable`).
        key: String,
        /// The value as written.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// Anything else, as a sentence that says what to do.
    #[error("{}: {message}", path.display())]
    Other {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}
