//! Reading the journal: the releases of an app (what `cutover releases`, `rollback` and `status`
//! show), the events of one, and what `cutover resume` needs of an interrupted one.
//!
//! A release still marked running is reported `interrupted` once its runner is gone: the row cannot
//! say so itself, since the process that would have marked it is the one that died.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::record::{ReleaseRecord, ReleaseStatus, ResumeRecord, Running};
use cutover_core::contract::DeployPlan;
use cutover_core::events::Event;

impl Journal {
    /// Every release of `app`, oldest first.
    pub fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, JournalError> {
        let mut records = self.store.releases(app)?;
        for r in &mut records {
            if r.status == ReleaseStatus::Running && !self.alive(&running(r)) {
                r.status = ReleaseStatus::Interrupted;
            }
        }
        Ok(records)
    }

    /// The highest release version ever recorded for `app` (versions are never reused by a deploy).
    pub fn max_version(&self, app: &str) -> Result<u64, JournalError> {
        self.store.max_version(app)
    }

    /// Every event of a release, in order. An event this cutover cannot read is an error, not a gap.
    pub fn events(&self, release_id: i64) -> Result<Vec<Event>, JournalError> {
        self.store
            .events(release_id)?
            .into_iter()
            .map(|(seq, json)| {
                serde_json::from_str(&json).map_err(|e| {
                    JournalError::Refused(format!(
                        "event #{seq} of release #{release_id} in {} cannot be read: {e}",
                        self.location()
                    ))
                })
            })
            .collect()
    }

    /// Every traffic reading of a release (`traffic_sampled`), in the order they were taken. Kept
    /// apart from [`Self::events`], so a replay and a resume never see them.
    pub fn samples(&self, release_id: i64) -> Result<Vec<Event>, JournalError> {
        self.store
            .samples(release_id)?
            .into_iter()
            .map(|(seq, json)| {
                serde_json::from_str(&json).map_err(|e| {
                    JournalError::Refused(format!(
                        "a traffic reading (before event #{seq}) of release #{release_id} in {} cannot be \
                         read: {e}",
                        self.location()
                    ))
                })
            })
            .collect()
    }

    /// A release's events with its traffic readings among them, each reading just before the event
    /// that followed it: what a picture of the release is drawn from.
    pub fn events_with_samples(&self, release_id: i64) -> Result<Vec<Event>, JournalError> {
        let events = self.events(release_id)?;
        let mut samples = self.samples(release_id)?.into_iter().peekable();
        let mut all = Vec::with_capacity(events.len() + samples.len());
        for e in events {
            while let Some(s) = samples.next_if(|s| s.seq <= e.seq) {
                all.push(s);
            }
            all.push(e);
        }
        all.extend(samples);
        Ok(all)
    }

    /// Number of events recorded for a release.
    pub fn event_count(&self, release_id: i64) -> Result<u64, JournalError> {
        self.store.event_count(release_id)
    }

    /// The plan, strategy reference and events of a release, for `cutover resume`; `None` when the
    /// release was recorded without a plan (a first launch, or an older cutover).
    pub fn resume_record(&self, id: i64) -> Result<Option<ResumeRecord>, JournalError> {
        let Some((Some(plan), Some(strategy_ref))) = self.store.resume_row(id)? else { return Ok(None) };
        let Ok(plan) = serde_json::from_str::<DeployPlan>(&plan) else { return Ok(None) };
        Ok(Some(ResumeRecord { plan, strategy_ref, events: self.events(id)? }))
    }
}

/// A release record as the liveness check sees it.
fn running(r: &ReleaseRecord) -> Running {
    Running {
        id: r.id,
        version: r.target.version as i64,
        strategy: r.strategy.clone(),
        pid: r.pid,
        host: r.host.clone(),
        ci_job: r.ci_job.clone(),
        started_at_ms: r.started_at_ms,
        heartbeat_at_ms: r.heartbeat_at_ms,
    }
}
