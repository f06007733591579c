//! The journal as an event sink: every event of one release appended as it happens, so the journal
//! holds a deploy up to its last step even when its process is killed.

use crate::journal::Journal;
use crate::kill;
use cutover_core::events::{Event, EventSink};

/// An [`EventSink`] that appends every event of one release to the journal.
pub struct JournalSink {
    /// The journal written to.
    pub journal: Journal,
    /// The release the events belong to (from [`Journal::begin`] or [`Journal::adopt`]).
    pub release_id: i64,
}

impl EventSink for JournalSink {
    fn event(&self, event: &Event) {
        kill::at_event(event.seq);
        if let Err(e) = self.journal.append(self.release_id, event) {
            // The deploy goes on (stopping it half-way would be worse); the gap is reported.
            tracing::error!("event {} not journaled: {e}", event.seq);
        }
    }
}
