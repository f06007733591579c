//! The log budget: how many lines a strategy may log, on the host clock.
//!
//! Every kept line goes to the terminal, the event stream and the journal, so a strategy logging in a
//! loop must not fill them. A token bucket allows a burst, then a steady rate; lines over it are
//! dropped and counted, and the count is logged as a host note before the next line kept (or at the
//! end of the run).

use crate::replay::HOST_NOTE;
use cutover_core::events::{HostCall, LogLevel};

/// Log lines a strategy may write at once, and how many more per second of host-clock time after that.
/// Every kept line goes to the terminal, the event stream and the journal, so a strategy logging in a
/// loop must not fill them: lines over the budget are dropped and counted, and the count is logged.
const LOG_BURST: f64 = 1_000.0;
const LOG_PER_SECOND: f64 = 50.0;

/// A token bucket for a strategy's log lines, on the host clock.
pub(super) struct LogBudget {
    tokens: f64,
    /// When `tokens` was last topped up, in ms since the run started.
    at_ms: u64,
    /// Lines dropped since the last note of it.
    dropped: u64,
}

impl LogBudget {
    /// A full bucket, at the start of a run.
    pub(super) fn new() -> Self {
        Self { tokens: LOG_BURST, at_ms: 0, dropped: 0 }
    }

    /// Whether a log line at `at_ms` fits the budget: `None` when it is dropped (and counted), else
    /// how many lines were dropped since the last note, to be noted before it.
    pub(super) fn admit(&mut self, at_ms: u64) -> Option<u64> {
        let refill = at_ms.saturating_sub(self.at_ms) as f64 / 1000.0 * LOG_PER_SECOND;
        self.tokens = (self.tokens + refill).min(LOG_BURST);
        self.at_ms = self.at_ms.max(at_ms);
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.dropped))
    }

    /// The lines dropped since the last note, which the caller now notes.
    pub(super) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// The host's note that `dropped` lines were dropped, as the log call it is recorded as.
pub(super) fn dropped_note(dropped: u64) -> HostCall {
    let message = format!(
        "{HOST_NOTE}{dropped} log line(s) of the strategy dropped: over its budget of {LOG_BURST} lines, \
         then {LOG_PER_SECOND} a second"
    );
    HostCall::Log { level: LogLevel::Warn, message }
}
