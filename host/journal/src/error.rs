//! Why the journal could not be read or written.

use crate::schema::SCHEMA_VERSION;
use std::path::PathBuf;

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be created, opened or set up (its directory, a lock, a damaged file).
    #[error("cannot open the journal {path}: {source}")]
    Open {
        /// The journal file.
        path: PathBuf,
        /// What SQLite (or the file system) said.
        source: rusqlite::Error,
    },
    /// The journal was written by a newer cutover: read with this one's schema it would be misread.
    #[error(
        "the journal {path} has schema version {found}, this cutover reads version {SCHEMA_VERSION}: \
         use the cutover that wrote it, or move the file away to start a new journal"
    )]
    Schema {
        /// The journal file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
    },
    /// A read or write failed.
    #[error("journal {path}: {source}")]
    Sql {
        /// The journal file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A request the journal cannot answer (e.g. promoting when nothing waits).
    #[error("{0}")]
    Refused(String),
    /// Another process is deploying the same app (the message names it).
    #[error("{0}")]
    Busy(String),
}
