//! An open journal: the file, its one connection, and opening it (creating or migrating the schema).
//!
//! One connection per process, shared by every clone behind a mutex: the journal is written a row at a
//! time (an event, a release's start or end), far below what would make the lock matter, and SQLite in
//! WAL mode lets other processes (`cutover promote`, `cutover releases`) read and write beside it.

use crate::error::JournalError;
use crate::schema::{MIGRATIONS, SCHEMA, SCHEMA_VERSION};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// File name of the journal inside the state directory.
pub const FILE: &str = "journal.db";

/// An open journal. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Journal {
    /// The file, for error messages.
    pub(crate) path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl Journal {
    /// Open (creating if needed) the journal in `dir`.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        let path = dir.join(FILE);
        std::fs::create_dir_all(dir).map_err(|e| JournalError::Open {
            path: path.clone(),
            source: rusqlite::Error::InvalidPath(PathBuf::from(format!("{}: {e}", dir.display()))),
        })?;
        let open_err = |source| JournalError::Open { path: path.clone(), source };
        let conn = Connection::open(&path).map_err(open_err)?;
        // Another process (a deploy, `cutover promote`) may hold the write lock for a moment.
        conn.busy_timeout(Duration::from_secs(10)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        // WAL with NORMAL survives a killed process (what the journal is for); only a power cut may
        // lose the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(open_err)?;
        match found {
            0 => {
                conn.execute_batch(SCHEMA).map_err(open_err)?;
                conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(open_err)?;
            }
            SCHEMA_VERSION => {}
            found if (1..SCHEMA_VERSION).contains(&found) => {
                let steps: String = MIGRATIONS[found as usize - 1..].concat();
                conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .map_err(open_err)?;
            }
            found => return Err(JournalError::Schema { path, found }),
        }
        Ok(Self { path, conn: Arc::new(Mutex::new(conn)) })
    }

    /// Where the journal lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn sql(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sql { path: self.path.clone(), source }
    }
}

/// Wall-clock now, in milliseconds since the Unix epoch (what the journal stamps rows with).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
