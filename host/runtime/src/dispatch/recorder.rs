//! Numbering events: every event of a run, the host's and the strategy's, gets the next sequence
//! number and the host-clock time, and goes to the run's sink.
//!
//! Apart from the dispatcher because the driver records too (its own notes, a resumed run's log that
//! goes on from the journal's last number), through the same numbering.

use crate::clock::HostClock;
use cutover_core::events::{Event, EventKind, EventSink, HostCall, HostReply, SinkError};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Numbers events and hands them to the sink, and remembers the first event the sink could not take:
/// from then on the run is stopping, and the dispatcher sends nothing more to the platform.
///
/// Events are numbered by one writer at a time, so taking a number is a load and a store, not an
/// atomic read-modify-write (a locked instruction, a full barrier on x86, paid by every host call).
/// Who writes, in a deploy or a resume: the driver, before the strategy runs (the deploy's start; the
/// release command's lines and a launch's notes, which platforms get as a borrowed `&dyn` log that
/// no spawned task can hold) and after it returned (the deploy's end); in between, only the
/// dispatcher, whose calls come one at a time from the run's store (`&mut Store`), in the driver's
/// task. The traffic sampler, a task of its own, only reads the number (`record_aside`). Two
/// writers at once would break the sink's contract anyway (events in `seq` order), which a shared
/// `fetch_add` did not ensure either; debug builds (every test) check that no number is taken twice,
/// since the journal would keep only the later of two events with one number.
#[derive(Clone)]
pub struct Recorder {
    /// The next event's number (see above for why it is not taken with `fetch_add`).
    seq: Arc<AtomicU64>,
    sink: Arc<dyn EventSink>,
    clock: HostClock,
    failed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<SinkError>>>,
}

impl Recorder {
    /// A recorder whose first event is number 0 (a new deploy).
    pub fn new(sink: Arc<dyn EventSink>, clock: HostClock) -> Self {
        Self::starting_at(sink, clock, 0)
    }

    /// A recorder whose first event is number `seq` (a resumed deploy's log goes on from the journal).
    pub fn starting_at(sink: Arc<dyn EventSink>, clock: HostClock, seq: u64) -> Self {
        Self {
            seq: Arc::new(AtomicU64::new(seq)),
            sink,
            clock,
            failed: Arc::default(),
            failure: Arc::default(),
        }
    }

    /// Stamp and emit one event; an error says it is not on record (and is kept, see
    /// [`Self::failure`]).
    pub fn record(&self, kind: EventKind) -> Result<(), SinkError> {
        self.record_at(self.clock.elapsed_ms(), kind)
    }

    /// Take the next event's number (one writer at a time, see [`Recorder`]).
    #[inline]
    fn next_seq(&self) -> u64 {
        let seq = self.seq.load(Ordering::Relaxed);
        #[cfg(debug_assertions)]
        assert!(
            self.seq.compare_exchange(seq, seq + 1, Ordering::Relaxed, Ordering::Relaxed).is_ok(),
            "two writers numbered events at once"
        );
        #[cfg(not(debug_assertions))]
        self.seq.store(seq + 1, Ordering::Relaxed);
        seq
    }

    /// Emit one event stamped `at_ms` (when the caller has just read the clock anyway).
    #[inline]
    pub(super) fn record_at(&self, at_ms: u64, kind: EventKind) -> Result<(), SinkError> {
        let event = Event { seq: self.next_seq(), at_ms, kind };
        self.sink.event(&event).inspect_err(|e| self.fail(e))
    }

    /// Record a call that never waited with its reply, and hand the reply back: it goes into the event
    /// and out again rather than being cloned for it (the hot path of chatty strategies).
    #[inline]
    pub(super) fn record_call_at(
        &self,
        at_ms: u64,
        call: HostCall,
        reply: HostReply,
    ) -> (Result<(), SinkError>, HostReply) {
        let event =
            Event { seq: self.next_seq(), at_ms, kind: EventKind::HostCall { call, reply, took_ms: 0 } };
        let recorded = self.sink.event(&event).inspect_err(|e| self.fail(e));
        let EventKind::HostCall { reply, .. } = event.kind else { unreachable!("built just above") };
        (recorded, reply)
    }

    /// Record `runtime.now` answered `time`, the hottest call (see [`super::Dispatcher::now`]). The
    /// event is built in place and never dropped: `Now` and `Time` own nothing, and the sink only
    /// borrows the event, so there is nothing to drop (the compiler cannot see that through the
    /// sink's dynamic call, and would drop every variant of a general event).
    #[inline]
    pub(super) fn record_now_at(&self, at_ms: u64, time: u64) -> Result<(), SinkError> {
        let event = ManuallyDrop::new(Event {
            seq: self.next_seq(),
            at_ms,
            kind: EventKind::HostCall { call: HostCall::Now, reply: HostReply::Time(time), took_ms: 0 },
        });
        self.sink.event(&event).inspect_err(|e| self.fail(e))
    }

    /// Keep the first failure, and say the run is stopping.
    #[cold]
    fn fail(&self, e: &SinkError) {
        let mut first = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e.clone());
        }
        self.failed.store(true, Ordering::Release);
    }

    /// Emit an event kept beside the log (the driver's traffic readings, [`EventSink::aside`]). It
    /// takes no number: its `seq` is the next event's, so the log's numbering, which the crash tests
    /// count and a resume goes on from, is the same whether or not readings were taken and however
    /// they fell between the events. A sink that refuses it does not stop the run.
    pub fn record_aside(&self, kind: EventKind) -> Result<(), SinkError> {
        let event = Event { seq: self.seq.load(Ordering::Relaxed), at_ms: self.clock.elapsed_ms(), kind };
        self.sink.aside(&event)
    }

    /// The first event the sink could not take, if one was refused: the run must stop. Checked
    /// after every call, so the usual answer (none) is one inlined load.
    #[inline]
    pub fn failure(&self) -> Option<SinkError> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.first_failure()
    }

    /// The failure [`Self::failure`] reports, once there is one.
    #[cold]
    fn first_failure(&self) -> Option<SinkError> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
