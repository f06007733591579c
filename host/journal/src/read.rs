//! Reading the journal: the releases of an app (what `cutover releases`, `rollback` and `status`
//! show), the events of one, and what `cutover resume` needs of an interrupted one.
//!
//! A release still marked running is reported `interrupted` once its process is gone: the row cannot
//! say so itself, since the process that would have marked it is the one that died.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::record::{ReleaseKind, ReleaseRecord, ReleaseStatus, ResumeRecord};
use cutover_core::Release;
use cutover_core::contract::DeployPlan;
use cutover_core::events::Event;
use rusqlite::OptionalExtension;

impl Journal {
    /// Every release of `app`, oldest first.
    pub fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, JournalError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, app, kind, version, image, previous_version, previous_image, strategy,
                    strategy_hash, params, platform, status, error, started_at_ms, duration_ms, pid,
                    waiting_gate, leftovers
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
                    leftovers: row
                        .get::<_, Option<String>>(17)?
                        .and_then(|json| serde_json::from_str(&json).ok())
                        .unwrap_or_default(),
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

    /// Number of events recorded for a release.
    pub fn event_count(&self, release_id: i64) -> Result<u64, JournalError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM events WHERE release_id = ?1", [release_id], |r| r.get(0))
            .map(|n: i64| n as u64)
            .map_err(|e| self.sql(e))
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
}
