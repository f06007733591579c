//! The journal as an event sink: every event of one release appended as it happens, so the journal
//! holds a deploy up to its last step even when its process is killed.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::kill;
use cutover_core::events::{Event, EventKind, EventSink, SinkError};
use std::sync::atomic::{AtomicU64, Ordering};

/// What an event is charged beyond its JSON, for its row's other columns, its index entry and its
/// share of page headers and free space, so the bound holds for the file and not just for the JSON in
/// it (measured: 2 MiB of `machines.get` events, ~480 bytes of JSON each, took 2.33 MB on disk
/// uncharged, 1.75 MB charged so).
const ROW_OVERHEAD: u64 = 160;

/// An [`EventSink`] that appends every event of one release to the journal, up to a bound on the
/// bytes a deploy's events may take.
pub struct JournalSink {
    /// The journal written to.
    pub journal: Journal,
    /// The release the events belong to (from [`Journal::begin`] or [`Journal::adopt`]).
    pub release_id: i64,
    /// Bytes of the strategy's events this sink may still write (`[cutover.limits] journal_mb`).
    budget: AtomicU64,
    /// The bound it started from, for the error.
    limit_bytes: u64,
}

impl JournalSink {
    /// A sink for `release_id`'s events in `journal`, which writes at most `limit_bytes` bytes of
    /// the strategy's events.
    pub fn new(journal: Journal, release_id: i64, limit_bytes: u64) -> Self {
        Self { journal, release_id, budget: AtomicU64::new(limit_bytes), limit_bytes }
    }

    /// What the journal's error `e` on event `seq` is to the run.
    fn failed(&self, seq: u64, e: JournalError) -> SinkError {
        let message = match e {
            JournalError::Sql { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        SinkError::Failed { place: self.journal.location().to_string(), seq, message }
    }

    /// Take `bytes` out of the budget; `false` (and nothing taken) when they do not fit.
    fn spend(&self, bytes: u64) -> bool {
        self.budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes)).is_ok()
    }
}

impl EventSink for JournalSink {
    /// Fails closed: an event that cannot be written is an error, so the change it announces is not
    /// made (a resume relies on every change being on record before it reaches the platform).
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        kill::at_event(event.seq);
        // The strategy's calls are bounded; the host's own few events (start, resume, finish) always
        // fit, so a deploy stopped by the bound is still closed on record.
        let json = serde_json::to_string(event).unwrap_or_default();
        let bounded = matches!(event.kind, EventKind::HostCall { .. } | EventKind::Intent { .. });
        if bounded && !self.spend(json.len() as u64 + ROW_OVERHEAD) {
            return Err(SinkError::Full { limit_bytes: self.limit_bytes });
        }
        self.journal.append_json(self.release_id, event, &json).map_err(|e| {
            let failed = self.failed(event.seq, e);
            tracing::error!("event {} not journaled: {failed}", event.seq);
            failed
        })
    }

    /// A traffic reading goes to its own table, past the kill hook (which counts the log's events
    /// only) and outside the strategy's budget (the driver bounds its readings itself).
    fn aside(&self, event: &Event) -> Result<(), SinkError> {
        self.journal.append_sample(self.release_id, event).map_err(|e| self.failed(event.seq, e))
    }
}
