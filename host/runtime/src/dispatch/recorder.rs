//! Numbering events: every event of a run, the host's and the strategy's, gets the next sequence
//! number and the host-clock time, and goes to the run's sink.
//!
//! Apart from the dispatcher because the driver records too (its own notes, a resumed run's log that
//! goes on from the journal's last number), through the same numbering.

use crate::clock::HostClock;
use cutover_core::events::{Event, EventKind, EventSink};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers events and hands them to the sink.
#[derive(Clone)]
pub struct Recorder {
    seq: Arc<AtomicU64>,
    sink: Arc<dyn EventSink>,
    clock: HostClock,
}

impl Recorder {
    /// A recorder whose first event is number 0 (a new deploy).
    pub fn new(sink: Arc<dyn EventSink>, clock: HostClock) -> Self {
        Self::starting_at(sink, clock, 0)
    }

    /// A recorder whose first event is number `seq` (a resumed deploy's log goes on from the journal).
    pub fn starting_at(sink: Arc<dyn EventSink>, clock: HostClock, seq: u64) -> Self {
        Self { seq: Arc::new(AtomicU64::new(seq)), sink, clock }
    }

    /// Stamp and emit one event.
    pub fn record(&self, kind: EventKind) {
        self.record_at(self.clock.elapsed_ms(), kind);
    }

    /// Emit one event stamped `at_ms` (when the caller has just read the clock anyway).
    #[inline]
    pub(super) fn record_at(&self, at_ms: u64, kind: EventKind) {
        let event = Event { seq: self.seq.fetch_add(1, Ordering::Relaxed), at_ms, kind };
        self.sink.event(&event);
    }
}
