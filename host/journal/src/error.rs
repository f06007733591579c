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
        "the journal {location} has schema version {found}, this cutover reads version {SCHEMA_VERSION}: \
         use the cutover that wrote it, or point cutover at a new journal"
    )]
    Schema {
        /// The journal file, or the database's URL with its password hidden.
        location: String,
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
    /// A journal URL that cannot be used (the message says why; it never holds the password).
    #[error("{0}")]
    Url(String),
    /// The connection to the PostgreSQL journal ended or could not be set up (the message says why).
    #[error("{0}")]
    Connection(String),
    /// The PostgreSQL journal could not be reached, set up, read or written.
    #[error("journal {location}: {source}")]
    Postgres {
        /// The database's URL with its password hidden.
        location: String,
        /// What PostgreSQL (or the connection) said.
        source: postgres::Error,
    },
    /// A request the journal cannot answer (e.g. promoting when nothing waits).
    #[error("{0}")]
    Refused(String),
    /// Another process is deploying the same app (the message names it).
    #[error("{0}")]
    Busy(String),
}
