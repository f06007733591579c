//! The journal: an SQLite database (WAL) in the app's state directory that records every release and
//! every event of every deploy.
//!
//! It is what `cutover releases` lists, what `cutover rollback` picks its target from, and how
//! `cutover promote`, run from another terminal, reaches a deploy waiting at a manual gate (SQLite in
//! WAL mode lets one process write while others read, so no daemon is needed for that).
//!
//! A release row is written before the strategy starts and completed when it ends, so a deploy whose
//! process died is still listed (as `interrupted`, once its process is gone). The row keeps the plan
//! the strategy was given and how the strategy was named, and the events keep every call with its
//! answer (a change is on record as an intent before it reaches the platform): that is what
//! `cutover resume` replays.

use cutover_core::contract::DeployPlan;
use cutover_core::events::{Event, EventSink};
use cutover_core::{ErrorKind, OpError, Release};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// File name of the journal inside the state directory.
pub const FILE: &str = "journal.db";

/// How often a waiting manual gate looks for a promotion.
const PROMOTION_POLL: Duration = Duration::from_millis(200);

/// Bumped when the schema changes; a newer journal is refused rather than misread, an older one is
/// brought up to date (see [`MIGRATIONS`]).
const SCHEMA_VERSION: i64 = 2;

/// What takes a journal of version `n` (the index plus one) to the next.
const MIGRATIONS: &[&str] = &["ALTER TABLE releases ADD COLUMN plan TEXT;
     ALTER TABLE releases ADD COLUMN strategy_ref TEXT;"];

/// Kill this process (SIGKILL, no clean-up) just before the journal writes the event with this
/// sequence number: how the crash tests stop a deploy at every step. A testing aid only.
pub const KILL_AT_EVENT_ENV: &str = "CUTOVER_FAULT_KILL_AT_EVENT";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS releases (
    id               INTEGER PRIMARY KEY,
    app              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    version          INTEGER NOT NULL,
    image            TEXT NOT NULL,
    previous_version INTEGER,
    previous_image   TEXT,
    strategy         TEXT NOT NULL,
    strategy_hash    TEXT NOT NULL,
    params           TEXT NOT NULL,
    platform         TEXT NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT,
    started_at_ms    INTEGER NOT NULL,
    duration_ms      INTEGER,
    pid              INTEGER NOT NULL,
    waiting_gate     TEXT,
    plan             TEXT,
    strategy_ref     TEXT
);
CREATE INDEX IF NOT EXISTS releases_by_app ON releases (app, id);
CREATE TABLE IF NOT EXISTS events (
    release_id INTEGER NOT NULL REFERENCES releases (id),
    seq        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    event      TEXT NOT NULL,
    PRIMARY KEY (release_id, seq)
);
CREATE TABLE IF NOT EXISTS promotions (
    id           INTEGER PRIMARY KEY,
    release_id   INTEGER NOT NULL REFERENCES releases (id),
    gate         TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    taken        INTEGER NOT NULL DEFAULT 0
);
";

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the journal {path} has schema version {found}, this cutover reads version {SCHEMA_VERSION}: \
         use the cutover that wrote it, or move the file away to start a new journal"
    )]
    Schema { path: PathBuf, found: i64 },
    #[error("journal {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    /// A request the journal cannot answer (e.g. promoting when nothing waits).
    #[error("{0}")]
    Refused(String),
    /// Another process is deploying the same app (the message names it).
    #[error("{0}")]
    Busy(String),
}

/// What started a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    Deploy,
    Rollback,
    /// The app's first machines, created from nothing (no strategy runs).
    Launch,
}

impl ReleaseKind {
    /// The word shown in `cutover releases`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Launch => "launch",
        }
    }
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    Running,
    Succeeded,
    Failed,
    /// Marked running, but the process that ran it is gone (killed, crashed, machine lost).
    Interrupted,
}

impl ReleaseStatus {
    /// The word shown in `cutover releases`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One row of `cutover releases`.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseRecord {
    /// Sequence number of the deploy in this journal (1, 2, …).
    pub id: i64,
    pub app: String,
    pub kind: ReleaseKind,
    pub target: Release,
    pub previous: Option<Release>,
    pub strategy: String,
    /// BLAKE3 of the strategy component, so "which code ran" is never ambiguous.
    pub strategy_hash: String,
    /// The strategy's parameters, as JSON.
    pub params: serde_json::Value,
    pub platform: String,
    pub status: ReleaseStatus,
    pub error: Option<String>,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// Host-clock duration (virtual under the simulator); `None` while running.
    pub duration_ms: Option<i64>,
    pub pid: u32,
    /// The manual gate the deploy is waiting at, if any.
    pub waiting_gate: Option<String>,
}

/// What is known about a release when it starts.
pub struct NewRelease<'a> {
    pub app: &'a str,
    pub kind: ReleaseKind,
    pub target: &'a Release,
    pub previous: Option<&'a Release>,
    pub strategy: &'a str,
    pub strategy_hash: &'a str,
    pub params: serde_json::Value,
    pub platform: &'a str,
    /// The plan the strategy is given, and how the config named the strategy: what a resume needs.
    pub plan: Option<&'a DeployPlan>,
    pub strategy_ref: Option<&'a str>,
}

/// What `cutover resume` needs of an interrupted release besides its record.
#[derive(Debug, Clone)]
pub struct ResumeRecord {
    pub plan: DeployPlan,
    /// A built-in name or the path of the component, as the deploy resolved it.
    pub strategy_ref: String,
    /// Every event journaled, in order.
    pub events: Vec<Event>,
}

/// An open journal. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Journal {
    path: PathBuf,
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

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sql(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sql { path: self.path.clone(), source }
    }

    /// Record a release as running, before anything is changed; returns its id. Refused (`Busy`,
    /// naming it) while another live process runs a deploy of the same app: the check and the insert
    /// are one write transaction, so of two deploys started at once exactly one goes ahead.
    pub fn begin(&self, r: &NewRelease<'_>) -> Result<i64, JournalError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let running: Vec<(i64, i64, String, u32, i64)> = tx
            .prepare(
                "SELECT id, version, strategy, pid, started_at_ms FROM releases
                 WHERE app = ?1 AND status = 'running' ORDER BY id",
            )
            .and_then(|mut q| {
                q.query_map(params![r.app], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })?
                .collect()
            })
            .map_err(|e| self.sql(e))?;
        let me = std::process::id();
        if let Some((id, version, strategy, pid, started)) =
            running.into_iter().find(|(.., pid, _)| *pid != me && cutover_core::os::process_alive(*pid))
        {
            let ago = (now_ms() - started).max(0) / 1000;
            return Err(JournalError::Busy(format!(
                "another deploy of {} is running: deploy #{id} (v{version}, {strategy}) in process {pid},                  started {ago} s ago. Wait for it to finish (`cutover releases` shows it); if that process                  is stuck, stop it (`kill {pid}`) and deploy again",
                r.app
            )));
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
                me,
                r.plan.map(|p| serde_json::to_string(p).unwrap_or_default()),
                r.strategy_ref,
            ],
        )
        .map_err(|e| self.sql(e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(id)
    }

    /// Take over an interrupted release for this process (`cutover resume`), in one write transaction
    /// so two resumes cannot both go ahead. Refused while the process that ran it is alive.
    pub fn adopt(&self, id: i64) -> Result<(), JournalError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let row: Option<(String, u32)> = tx
            .query_row("SELECT status, pid FROM releases WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(|e| self.sql(e))?;
        let me = std::process::id();
        match row {
            None => return Err(JournalError::Refused(format!("the journal has no release #{id}"))),
            Some((status, _)) if status != "running" => {
                return Err(JournalError::Refused(format!("release #{id} is not interrupted: it {status}")));
            }
            Some((_, pid)) if pid != me && cutover_core::os::process_alive(pid) => {
                return Err(JournalError::Busy(format!(
                    "deploy #{id} is still running, in process {pid}: it is not interrupted, so there is                      nothing to resume (stop it with `kill {pid}` first if it is stuck)"
                )));
            }
            Some(_) => {}
        }
        tx.execute("UPDATE releases SET pid = ?2, waiting_gate = NULL WHERE id = ?1", params![id, me])
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))
    }

    /// The plan, strategy reference and events of a release, for `cutover resume`; `None` when the
    /// release was recorded without a plan (a first launch, or an older cutover).
    pub fn resume_record(&self, id: i64) -> Result<Option<ResumeRecord>, JournalError> {
        let row: Option<(Option<String>, Option<String>)> = self
            .lock()
            .query_row("SELECT plan, strategy_ref FROM releases WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((Some(plan), Some(strategy_ref))) = row else { return Ok(None) };
        let Ok(plan) = serde_json::from_str::<DeployPlan>(&plan) else { return Ok(None) };
        Ok(Some(ResumeRecord { plan, strategy_ref, events: self.events(id)? }))
    }

    /// Every event of a release, in order. An event this cutover cannot read is an error, not a gap.
    pub fn events(&self, release_id: i64) -> Result<Vec<Event>, JournalError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT seq, event FROM events WHERE release_id = ?1 ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([release_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(|(seq, json)| {
                serde_json::from_str(&json).map_err(|e| {
                    JournalError::Refused(format!(
                        "event #{seq} of release #{release_id} in {} cannot be read: {e}",
                        self.path.display()
                    ))
                })
            })
            .collect()
    }

    /// Record how a release ended.
    pub fn finish(
        &self,
        id: i64,
        succeeded: bool,
        error: Option<&str>,
        duration: Duration,
    ) -> Result<(), JournalError> {
        self.lock()
            .execute(
                "UPDATE releases SET status = ?2, error = ?3, duration_ms = ?4, waiting_gate = NULL
                 WHERE id = ?1",
                params![
                    id,
                    if succeeded { "succeeded" } else { "failed" },
                    error,
                    duration.as_millis() as i64
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Every release of `app`, oldest first.
    pub fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, JournalError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, app, kind, version, image, previous_version, previous_image, strategy,
                    strategy_hash, params, platform, status, error, started_at_ms, duration_ms, pid,
                    waiting_gate
                 FROM releases WHERE app = ?1 ORDER BY id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([app], |row| {
                let status: String = row.get(11)?;
                let pid: u32 = row.get(15)?;
                let previous = match (row.get::<_, Option<i64>>(5)?, row.get::<_, Option<String>>(6)?) {
                    (Some(version), Some(image)) => Some(Release { version: version as u64, image }),
                    _ => None,
                };
                Ok(ReleaseRecord {
                    id: row.get(0)?,
                    app: row.get(1)?,
                    kind: match row.get::<_, String>(2)?.as_str() {
                        "rollback" => ReleaseKind::Rollback,
                        "launch" => ReleaseKind::Launch,
                        _ => ReleaseKind::Deploy,
                    },
                    target: Release { version: row.get::<_, i64>(3)? as u64, image: row.get(4)? },
                    previous,
                    strategy: row.get(7)?,
                    strategy_hash: row.get(8)?,
                    params: serde_json::from_str(&row.get::<_, String>(9)?).unwrap_or_default(),
                    platform: row.get(10)?,
                    status: match status.as_str() {
                        "succeeded" => ReleaseStatus::Succeeded,
                        "failed" => ReleaseStatus::Failed,
                        _ if cutover_core::os::process_alive(pid) => ReleaseStatus::Running,
                        _ => ReleaseStatus::Interrupted,
                    },
                    error: row.get(12)?,
                    started_at_ms: row.get(13)?,
                    duration_ms: row.get(14)?,
                    pid,
                    waiting_gate: row.get(16)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// The highest release version ever recorded for `app` (versions are never reused by a deploy).
    pub fn max_version(&self, app: &str) -> Result<u64, JournalError> {
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

    /// Append one event of a release.
    pub fn append(&self, release_id: i64, event: &Event) -> Result<(), JournalError> {
        let json = serde_json::to_string(event).unwrap_or_default();
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO events (release_id, seq, at_ms, event) VALUES (?1, ?2, ?3, ?4)",
                params![release_id, event.seq as i64, event.at_ms as i64, json],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Number of events recorded for a release.
    pub fn event_count(&self, release_id: i64) -> Result<u64, JournalError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM events WHERE release_id = ?1", [release_id], |r| r.get(0))
            .map(|n: i64| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// Promote the manual gate a running deploy of `app` waits at (`gate`, or whichever it waits at).
    /// Returns the release and the gate promoted.
    pub fn promote(&self, app: &str, gate: Option<&str>) -> Result<(ReleaseRecord, String), JournalError> {
        let running: Vec<ReleaseRecord> =
            self.releases(app)?.into_iter().filter(|r| r.status == ReleaseStatus::Running).collect();
        let Some(release) = running.last().cloned() else {
            return Err(JournalError::Refused(format!(
                "no deploy of {app} is running, so there is no gate to promote (`cutover releases` shows \
                 the app's deploys)"
            )));
        };
        let gate = match (gate, &release.waiting_gate) {
            (Some(g), _) => g.to_string(),
            (None, Some(waiting)) => waiting.clone(),
            (None, None) => {
                return Err(JournalError::Refused(format!(
                    "the running deploy of {app} (v{}, {}) is not waiting at a manual gate yet; name the gate \
                     to promote it ahead of time (e.g. `cutover promote step-25`)",
                    release.target.version, release.strategy
                )));
            }
        };
        self.lock()
            .execute(
                "INSERT INTO promotions (release_id, gate, at_ms) VALUES (?1, ?2, ?3)",
                params![release.id, gate, now_ms()],
            )
            .map_err(|e| self.sql(e))?;
        Ok((release, gate))
    }

    /// Mark the gate a release waits at (`None`: not waiting).
    fn set_waiting(&self, release_id: i64, gate: Option<&str>) -> Result<(), JournalError> {
        self.lock()
            .execute("UPDATE releases SET waiting_gate = ?2 WHERE id = ?1", params![release_id, gate])
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Take (consume) a promotion of `gate` for a release, if one was made.
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

    /// Wait, in real time, until `cutover promote` promotes `gate` of a release, or `timeout` passes.
    ///
    /// Polls from blocking threads: under the simulator's paused clock that also holds virtual time
    /// still (tokio does not jump the clock while a blocking task runs), so a person at a terminal has
    /// the gate's whole timeout to answer and the deploy's virtual deadline does not race them.
    pub async fn await_promotion(
        &self,
        release_id: i64,
        gate: &str,
        timeout: Duration,
    ) -> Result<(), OpError> {
        let deadline = std::time::Instant::now() + timeout;
        let journal = self.clone();
        let g = gate.to_string();
        let step = move || -> Result<bool, JournalError> {
            if journal.take_promotion(release_id, &g)? {
                journal.set_waiting(release_id, None)?;
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                journal.set_waiting(release_id, None)?;
                return Ok(false);
            }
            std::thread::sleep(PROMOTION_POLL.min(deadline - std::time::Instant::now()));
            Ok(false)
        };
        let platform_error = |e: JournalError| OpError::new(ErrorKind::Platform, e.to_string());
        self.set_waiting(release_id, Some(gate)).map_err(platform_error)?;
        loop {
            let step = step.clone();
            let promoted = tokio::task::spawn_blocking(step)
                .await
                .map_err(|e| OpError::new(ErrorKind::Platform, format!("promotion poll: {e}")))?
                .map_err(platform_error)?;
            if promoted {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(OpError::new(
                    ErrorKind::Timeout,
                    format!(
                        "manual gate `{gate}` was not promoted within {} (run `cutover promote {gate}` while \
                         the deploy waits)",
                        cutover_core::duration::display(timeout)
                    ),
                ));
            }
        }
    }
}

/// An [`EventSink`] that appends every event of one release to the journal.
pub struct JournalSink {
    pub journal: Journal,
    pub release_id: i64,
}

impl EventSink for JournalSink {
    fn event(&self, event: &Event) {
        if kill_at_event() == Some(event.seq) {
            // SAFETY: kill(2) on our own pid; no memory is touched.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        if let Err(e) = self.journal.append(self.release_id, event) {
            // The deploy goes on (stopping it half-way would be worse); the gap is reported.
            tracing::error!("event {} not journaled: {e}", event.seq);
        }
    }
}

/// The event [`KILL_AT_EVENT_ENV`] names, read once.
fn kill_at_event() -> Option<u64> {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *AT.get_or_init(|| std::env::var(KILL_AT_EVENT_ENV).ok().and_then(|v| v.trim().parse().ok()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(v: u64) -> Release {
        Release { version: v, image: format!("img:v{v}") }
    }

    fn begin(j: &Journal, v: u64) -> i64 {
        j.begin(&NewRelease {
            app: "app",
            kind: ReleaseKind::Deploy,
            target: &rel(v),
            previous: Some(&rel(v - 1)),
            strategy: "rolling",
            strategy_hash: "abc",
            params: serde_json::json!({"retries": 3}),
            platform: "sim",
            plan: None,
            strategy_ref: None,
        })
        .unwrap()
    }

    #[test]
    fn releases_round_trip_and_versions_only_grow() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let a = begin(&j, 2);
        j.finish(a, true, None, Duration::from_secs(3)).unwrap();
        let b = begin(&j, 3);
        j.finish(b, false, Some("boom"), Duration::from_secs(1)).unwrap();
        let rs = Journal::open(dir.path()).unwrap().releases("app").unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(
            (rs[0].status, rs[0].target.version, rs[0].duration_ms),
            (ReleaseStatus::Succeeded, 2, Some(3000))
        );
        assert_eq!(rs[1].status, ReleaseStatus::Failed);
        assert_eq!(rs[1].error.as_deref(), Some("boom"));
        assert_eq!(rs[1].previous, Some(rel(2)));
        assert_eq!(j.max_version("app").unwrap(), 3);
        assert_eq!(j.max_version("other").unwrap(), 0);
        assert!(j.releases("other").unwrap().is_empty());
    }

    #[test]
    fn a_running_release_whose_process_is_gone_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let id = begin(&j, 2);
        assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Running);
        // A pid that cannot exist (above Linux's pid_max).
        j.lock().execute("UPDATE releases SET pid = 99999999 WHERE id = ?1", [id]).unwrap();
        assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Interrupted);
    }

    #[test]
    fn a_second_deploy_of_the_app_is_refused_while_one_runs() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let id = begin(&j, 2);
        // The running deploy belongs to another live process (this test's parent).
        let other = std::os::unix::process::parent_id();
        j.lock().execute("UPDATE releases SET pid = ?2 WHERE id = ?1", params![id, other]).unwrap();
        let release = rel(3);
        let again = NewRelease {
            app: "app",
            kind: ReleaseKind::Deploy,
            target: &release,
            previous: None,
            strategy: "rolling",
            strategy_hash: "00",
            params: serde_json::Value::Null,
            platform: "sim",
            plan: None,
            strategy_ref: None,
        };
        let e = j.begin(&again).unwrap_err();
        assert!(matches!(e, JournalError::Busy(_)), "{e}");
        let e = e.to_string();
        assert!(e.contains(&format!("deploy #{id} (v2")) && e.contains(&format!("process {other}")), "{e}");
        assert_eq!(j.releases("app").unwrap().len(), 1, "nothing recorded for the refused deploy");
        // Another app is not held up, and once the holder's process is gone the app is free again.
        assert!(j.begin(&NewRelease { app: "other", ..again }).is_ok());
        j.lock().execute("UPDATE releases SET pid = 99999999 WHERE id = ?1", [id]).unwrap();
        begin(&j, 3);
    }

    #[test]
    fn a_version_1_journal_is_brought_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The schema as version 1 wrote it: no plan, no strategy reference.
            let conn = Connection::open(dir.path().join(FILE)).unwrap();
            let v1 = SCHEMA.replace(",\n    plan             TEXT,\n    strategy_ref     TEXT", "");
            assert_ne!(v1, SCHEMA, "the version 1 schema is derived from this one");
            conn.execute_batch(&v1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO releases (app, kind, version, image, strategy, strategy_hash, params, platform,
                    status, started_at_ms, pid) VALUES ('app', 'deploy', 2, 'img:v2', 'rolling', 'abc', '{}',
                    'sim', 'succeeded', 0, 1)",
                [],
            )
            .unwrap();
        }
        let j = Journal::open(dir.path()).unwrap();
        let rs = j.releases("app").unwrap();
        assert_eq!((rs.len(), rs[0].target.version), (1, 2), "the old release is still there");
        assert!(j.resume_record(rs[0].id).unwrap().is_none(), "it has no plan to resume from");
        let id = begin(&j, 3);
        assert_eq!(j.releases("app").unwrap()[1].id, id);
        let version: i64 = j.lock().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }

    #[tokio::test]
    async fn promotion_reaches_a_waiting_gate() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let e = j.promote("app", None).unwrap_err().to_string();
        assert!(e.contains("no deploy of app is running"), "{e}");
        let id = begin(&j, 2);
        let e = j.promote("app", None).unwrap_err().to_string();
        assert!(e.contains("not waiting at a manual gate"), "{e}");

        let waiter = {
            let j = j.clone();
            tokio::spawn(async move { j.await_promotion(id, "step-10", Duration::from_secs(30)).await })
        };
        // The gate shows up as waiting; promote it from "another process" (a second connection).
        let other = Journal::open(dir.path()).unwrap();
        let mut promoted = None;
        for _ in 0..100 {
            if other.releases("app").unwrap()[0].waiting_gate.is_some() {
                promoted = Some(other.promote("app", None).unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (release, gate) = promoted.expect("the gate was marked waiting");
        assert_eq!((release.id, gate.as_str()), (id, "step-10"));
        waiter.await.unwrap().unwrap();
        assert_eq!(j.releases("app").unwrap()[0].waiting_gate, None);

        let e = j.await_promotion(id, "step-25", Duration::from_millis(300)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("cutover promote step-25"), "{e}");
    }
}
