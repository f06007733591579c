//! Writing a release: recording it before anything changes ([`Journal::begin`]), taking over an
//! interrupted one ([`Journal::adopt`]), appending its events, and recording how it ended.
//!
//! `begin` and `adopt` are each one write transaction (`BEGIN IMMEDIATE`) that checks and claims
//! together: of two deploys (or two resumes) of one app started at once, exactly one goes ahead.

use crate::error::JournalError;
use crate::journal::{Journal, now_ms};
use crate::record::{Leftover, NewRelease};
use cutover_core::events::Event;
use rusqlite::{OptionalExtension, params};
use std::time::Duration;

impl Journal {
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
                "another deploy of {} is running: deploy #{id} (v{version}, {strategy}) in process {pid}, \
                 started {ago} s ago. Wait for it to finish (`cutover releases` shows it); if that process \
                 is stuck, stop it (`kill {pid}`) and deploy again",
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
                    "deploy #{id} is still running, in process {pid}: it is not interrupted, so there is \
                     nothing to resume (stop it with `kill {pid}` first if it is stuck)"
                )));
            }
            Some(_) => {}
        }
        tx.execute("UPDATE releases SET pid = ?2, waiting_gate = NULL WHERE id = ?1", params![id, me])
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))
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

    /// Record the machines a release left to finish (replacing any list recorded before).
    pub fn leftovers(&self, id: i64, leftovers: &[Leftover]) -> Result<(), JournalError> {
        let json = serde_json::to_string(leftovers).unwrap_or_default();
        self.lock()
            .execute("UPDATE releases SET leftovers = ?2 WHERE id = ?1", params![id, json])
            .map_err(|e| self.sql(e))?;
        Ok(())
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
}
