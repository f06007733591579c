//! Writing a release: recording it before anything changes ([`Journal::begin`]), taking over an
//! interrupted one ([`Journal::adopt`]), appending its events, and recording how it ended.
//!
//! `begin` and `adopt` each check and claim in one transaction (SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's per-app advisory lock): of two deploys (or two resumes) of one app started at once,
//! from one machine or two, exactly one goes ahead.

use crate::error::JournalError;
use crate::journal::{Journal, now_ms};
use crate::record::{Leftover, NewRelease, Runner, Running};
use crate::store::Adopt;
use cutover_core::events::Event;
use std::time::Duration;

impl Journal {
    /// Record a release as running, before anything is changed; returns its id. Refused (`Busy`,
    /// naming it and where it runs) while another live runner deploys the same app: the check and the
    /// insert are one transaction, so of two deploys started at once exactly one goes ahead.
    pub fn begin(&self, r: &NewRelease<'_>) -> Result<i64, JournalError> {
        let alive = |run: &Running| !self.mine(run) && self.alive(run);
        match self.store.begin(r, &self.me, &alive)? {
            Ok(id) => {
                self.start_heartbeat(id);
                Ok(id)
            }
            Err(holder) => {
                let ago = (now_ms() - holder.started_at_ms).max(0) / 1000;
                let runner = Runner::describe(holder.pid, holder.host.as_deref(), holder.ci_job.as_deref());
                let stop = match &holder.host {
                    Some(h) if *h != self.me.host => format!("if that runner is stuck, stop it on {h}"),
                    _ => format!("if that process is stuck, stop it (`kill {}`)", holder.pid),
                };
                Err(JournalError::Busy(format!(
                    "another deploy of {} is running: deploy #{} (v{}, {}) in {runner}, started {ago} s ago. \
                     Wait for it to finish (`cutover releases` shows it); {stop} and deploy again",
                    r.app, holder.id, holder.version, holder.strategy
                )))
            }
        }
    }

    /// Take over an interrupted release for this process (`cutover resume`), in one transaction so
    /// two resumes cannot both go ahead. Refused while the runner that ran it is alive.
    pub fn adopt(&self, id: i64) -> Result<(), JournalError> {
        let alive = |run: &Running| !self.mine(run) && self.alive(run);
        match self.store.adopt(id, &self.me, &alive)? {
            Adopt::Adopted => {
                self.start_heartbeat(id);
                Ok(())
            }
            Adopt::Missing => Err(JournalError::Refused(format!("the journal has no release #{id}"))),
            Adopt::Ended(status) => {
                Err(JournalError::Refused(format!("release #{id} is not interrupted: it {status}")))
            }
            Adopt::Alive(holder) => {
                let runner = Runner::describe(holder.pid, holder.host.as_deref(), holder.ci_job.as_deref());
                Err(JournalError::Busy(format!(
                    "deploy #{id} is still running, in {runner}: it is not interrupted, so there is \
                     nothing to resume (stop it first if it is stuck)"
                )))
            }
        }
    }

    /// Record how a release ended.
    pub fn finish(
        &self,
        id: i64,
        succeeded: bool,
        error: Option<&str>,
        duration: Duration,
    ) -> Result<(), JournalError> {
        self.stop_heartbeat(id);
        let status = if succeeded { "succeeded" } else { "failed" };
        self.store.finish(id, status, error, duration.as_millis() as i64)
    }

    /// Record the machines a release left to finish (replacing any list recorded before).
    pub fn leftovers(&self, id: i64, leftovers: &[Leftover]) -> Result<(), JournalError> {
        self.store.set_leftovers(id, &serde_json::to_string(leftovers).unwrap_or_default())
    }

    /// Append one event of a release (any kind: it is stored as its JSON).
    pub fn append(&self, release_id: i64, event: &Event) -> Result<(), JournalError> {
        self.append_json(release_id, event, &serde_json::to_string(event).unwrap_or_default())
    }

    /// [`Self::append`] with the event already encoded (the sink measures it first).
    pub(crate) fn append_json(&self, release_id: i64, event: &Event, json: &str) -> Result<(), JournalError> {
        self.store.append(release_id, event.seq as i64, event.at_ms as i64, json)
    }

    /// Record one traffic reading of a release beside its events (the `samples` table, see
    /// the `schema` module): its `seq` (the next event's number) places it among them, and it takes no
    /// number of its own, so the events' numbering is the same with or without readings.
    pub fn append_sample(&self, release_id: i64, event: &Event) -> Result<(), JournalError> {
        let json = serde_json::to_string(event).unwrap_or_default();
        self.store.append_sample(release_id, event.seq as i64, event.at_ms as i64, &json)
    }
}
