//! The SQLite backend: `journal.db` (WAL) in the app's state directory, the embedded default.
//!
//! One connection per process, shared behind a mutex: the journal is written a row at a time (an
//! event, a release's start or end), far below what would make the lock matter, and SQLite in WAL mode
//! lets other processes (`cutover promote`, `cutover releases`) read and write beside it. A local file
//! is on one machine, so a running release is alive while its process is (`host` stays empty).

use crate::error::JournalError;
use crate::journal::now_ms;
use crate::record::{NewRelease, ReleaseKind, ReleaseRecord, ReleaseStatus, Runner, Running};
use crate::schema::{MIGRATIONS, SAMPLES, SCHEMA, SCHEMA_VERSION};
use crate::store::{Adopt, Alive, Dump, ResumeRow, Store};
use cutover_core::Release;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// File name of the journal inside the state directory.
pub const FILE: &str = "journal.db";

/// The columns a [`ReleaseRecord`] is read from, in [`record`]'s order.
const RECORD_COLUMNS: &str = "id, app, kind, version, image, previous_version, previous_image, strategy,
    strategy_hash, params, platform, status, error, started_at_ms, duration_ms, pid, waiting_gate, leftovers";

/// An SQLite journal.
pub(crate) struct SqliteStore {
    path: PathBuf,
    location: String,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Open (creating or migrating) the journal in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, JournalError> {
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
                conn.execute_batch(&[SCHEMA, SAMPLES].concat()).map_err(open_err)?;
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
            found => return Err(JournalError::Schema { location: path.display().to_string(), found }),
        }
        Ok(Self { location: path.display().to_string(), path, conn: Mutex::new(conn) })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sql(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sql { path: self.path.clone(), source }
    }
}

/// A release row, read from [`RECORD_COLUMNS`].
fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseRecord> {
    let previous = match (row.get::<_, Option<i64>>(5)?, row.get::<_, Option<String>>(6)?) {
        (Some(version), Some(image)) => Some(Release { version: version as u64, image }),
        _ => None,
    };
    Ok(ReleaseRecord {
        id: row.get(0)?,
        app: row.get(1)?,
        kind: ReleaseKind::parse(&row.get::<_, String>(2)?),
        target: Release { version: row.get::<_, i64>(3)? as u64, image: row.get(4)? },
        previous,
        strategy: row.get(7)?,
        strategy_hash: row.get(8)?,
        params: serde_json::from_str(&row.get::<_, String>(9)?).unwrap_or_default(),
        platform: row.get(10)?,
        status: ReleaseStatus::parse(&row.get::<_, String>(11)?),
        error: row.get(12)?,
        started_at_ms: row.get(13)?,
        duration_ms: row.get(14)?,
        pid: row.get(15)?,
        waiting_gate: row.get(16)?,
        leftovers: crate::record::leftovers_from(row.get::<_, Option<String>>(17)?.as_deref()),
        host: None,
        ci_job: None,
        heartbeat_at_ms: None,
    })
}

impl Store for SqliteStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn shared(&self) -> bool {
        false
    }

    fn begin(
        &self,
        r: &NewRelease<'_>,
        me: &Runner,
        alive: Alive<'_>,
    ) -> Result<Result<i64, Running>, JournalError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let running: Vec<Running> = tx
            .prepare(
                "SELECT id, version, strategy, pid, started_at_ms FROM releases
                 WHERE app = ?1 AND status = 'running' ORDER BY id",
            )
            .and_then(|mut q| {
                q.query_map(params![r.app], |row| {
                    Ok(Running {
                        id: row.get(0)?,
                        version: row.get(1)?,
                        strategy: row.get(2)?,
                        pid: row.get(3)?,
                        host: None,
                        ci_job: None,
                        started_at_ms: row.get(4)?,
                        heartbeat_at_ms: None,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.sql(e))?;
        if let Some(holder) = running.into_iter().find(|r| alive(r)) {
            return Ok(Err(holder));
        }
        tx.execute(
            "INSERT INTO releases (app, kind, version, image, previous_version, previous_image, strategy,
                strategy_hash, params, platform, status, started_at_ms, pid, plan, strategy_ref)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11, ?12, ?13, ?14)",
            params![
                r.app,
                r.kind.as_str(),
                r.target.version as i64,
                r.target.image,
                r.previous.map(|p| p.version as i64),
                r.previous.map(|p| p.image.as_str()),
                r.strategy,
                r.strategy_hash,
                r.params.to_string(),
                r.platform,
                now_ms(),
                me.pid,
                r.plan.map(|p| serde_json::to_string(p).unwrap_or_default()),
                r.strategy_ref,
            ],
        )
        .map_err(|e| self.sql(e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(Ok(id))
    }

    fn adopt(&self, id: i64, me: &Runner, alive: Alive<'_>) -> Result<Adopt, JournalError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let row: Option<(String, Running)> = tx
            .query_row(
                "SELECT status, id, version, strategy, pid, started_at_ms FROM releases WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get(0)?,
                        Running {
                            id: r.get(1)?,
                            version: r.get(2)?,
                            strategy: r.get(3)?,
                            pid: r.get(4)?,
                            host: None,
                            ci_job: None,
                            started_at_ms: r.get(5)?,
                            heartbeat_at_ms: None,
                        },
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        match row {
            None => return Ok(Adopt::Missing),
            Some((status, _)) if status != "running" => return Ok(Adopt::Ended(status)),
            Some((_, running)) if alive(&running) => return Ok(Adopt::Alive(running)),
            Some(_) => {}
        }
        tx.execute("UPDATE releases SET pid = ?2, waiting_gate = NULL WHERE id = ?1", params![id, me.pid])
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(Adopt::Adopted)
    }

    fn finish(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        duration_ms: i64,
    ) -> Result<(), JournalError> {
        self.lock()
            .execute(
                "UPDATE releases SET status = ?2, error = ?3, duration_ms = ?4, waiting_gate = NULL
                 WHERE id = ?1",
                params![id, status, error, duration_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn append(&self, release_id: i64, seq: i64, at_ms: i64, json: &str) -> Result<(), JournalError> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO events (release_id, seq, at_ms, event) VALUES (?1, ?2, ?3, ?4)",
                params![release_id, seq, at_ms, json],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn append_sample(
        &self,
        release_id: i64,
        after_seq: i64,
        at_ms: i64,
        json: &str,
    ) -> Result<(), JournalError> {
        self.lock()
            .execute(
                "INSERT INTO samples (release_id, after_seq, at_ms, event) VALUES (?1, ?2, ?3, ?4)",
                params![release_id, after_seq, at_ms, json],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn samples(&self, release_id: i64) -> Result<Vec<(i64, String)>, JournalError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT after_seq, event FROM samples WHERE release_id = ?1 ORDER BY id")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([release_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    fn heartbeat(&self, _release_id: i64) -> Result<(), JournalError> {
        // A local file: the process itself says whether its deploy is alive.
        Ok(())
    }

    fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, JournalError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!("SELECT {RECORD_COLUMNS} FROM releases WHERE app = ?1 ORDER BY id"))
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map([app], record).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn max_version(&self, app: &str) -> Result<u64, JournalError> {
        let v: Option<i64> = self
            .lock()
            .query_row(
                "SELECT MAX(MAX(version), COALESCE(MAX(previous_version), 0)) FROM releases WHERE app = ?1",
                [app],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?
            .flatten();
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    fn events(&self, release_id: i64) -> Result<Vec<(i64, String)>, JournalError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT seq, event FROM events WHERE release_id = ?1 ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([release_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    fn event_count(&self, release_id: i64) -> Result<u64, JournalError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM events WHERE release_id = ?1", [release_id], |r| r.get(0))
            .map(|n: i64| n as u64)
            .map_err(|e| self.sql(e))
    }

    fn resume_row(&self, id: i64) -> Result<Option<ResumeRow>, JournalError> {
        self.lock()
            .query_row("SELECT plan, strategy_ref FROM releases WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.sql(e))
    }

    fn add_promotion(&self, release_id: i64, gate: &str) -> Result<(), JournalError> {
        self.lock()
            .execute(
                "INSERT INTO promotions (release_id, gate, at_ms) VALUES (?1, ?2, ?3)",
                params![release_id, gate, now_ms()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn set_leftovers(&self, release_id: i64, json: &str) -> Result<(), JournalError> {
        self.lock()
            .execute("UPDATE releases SET leftovers = ?2 WHERE id = ?1", params![release_id, json])
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn set_waiting(&self, release_id: i64, gate: Option<&str>) -> Result<(), JournalError> {
        self.lock()
            .execute("UPDATE releases SET waiting_gate = ?2 WHERE id = ?1", params![release_id, gate])
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn take_promotion(&self, release_id: i64, gate: &str) -> Result<bool, JournalError> {
        let n = self
            .lock()
            .execute(
                "UPDATE promotions SET taken = 1
                 WHERE id = (SELECT id FROM promotions WHERE release_id = ?1 AND gate = ?2 AND taken = 0
                             ORDER BY id LIMIT 1)",
                params![release_id, gate],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    fn dump(&self) -> Result<Dump, JournalError> {
        let conn = self.lock();
        let mut dump = Dump::default();
        let mut stmt = conn
            .prepare(&format!("SELECT {RECORD_COLUMNS}, plan, strategy_ref FROM releases ORDER BY id"))
            .map_err(|e| self.sql(e))?;
        dump.releases = stmt
            .query_map([], |r| Ok((record(r)?, r.get(17)?, r.get(18)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        let mut stmt = conn
            .prepare("SELECT release_id, seq, at_ms, event FROM events ORDER BY release_id, seq")
            .map_err(|e| self.sql(e))?;
        dump.events = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        let mut stmt = conn
            .prepare("SELECT release_id, after_seq, at_ms, event FROM samples ORDER BY id")
            .map_err(|e| self.sql(e))?;
        dump.samples = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        let mut stmt = conn
            .prepare("SELECT id, release_id, gate, at_ms, taken FROM promotions ORDER BY id")
            .map_err(|e| self.sql(e))?;
        dump.promotions = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)? != 0)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        Ok(dump)
    }

    fn load(&self, _dump: &Dump) -> Result<(), JournalError> {
        Err(JournalError::Refused(format!(
            "{} is an SQLite journal: a journal is migrated to PostgreSQL, not into a file",
            self.location
        )))
    }

    fn is_empty(&self) -> Result<bool, JournalError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM releases", [], |r| r.get::<_, i64>(0))
            .map(|n| n == 0)
            .map_err(|e| self.sql(e))
    }

    #[cfg(test)]
    fn execute_for_test(&self, sql: &str) {
        self.lock().execute_batch(sql).unwrap();
    }

    #[cfg(test)]
    fn schema_version(&self) -> i64 {
        self.lock().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }
}
