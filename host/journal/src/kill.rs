//! Kill at an event: a testing aid that stops a deploy dead at a chosen step.
//!
//! The crash tests run a deploy once per event it journals, killing the process (SIGKILL, no clean-up)
//! just before that event is written, then resume it: every step a deploy can die at is tried. It
//! sits in the sink because that is the one place every event passes on its way to the journal.

/// Kill this process (SIGKILL, no clean-up) just before the journal writes the event with this
/// sequence number: how the crash tests stop a deploy at every step. A testing aid only.
pub const KILL_AT_EVENT_ENV: &str = "CUTOVER_FAULT_KILL_AT_EVENT";

/// Kill this process now if [`KILL_AT_EVENT_ENV`] names event `seq`.
pub(crate) fn at_event(seq: u64) {
    if kill_at_event() == Some(seq) {
        // SAFETY: kill(2) on our own pid; no memory is touched.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

/// The event [`KILL_AT_EVENT_ENV`] names, read once.
fn kill_at_event() -> Option<u64> {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *AT.get_or_init(|| std::env::var(KILL_AT_EVENT_ENV).ok().and_then(|v| v.trim().parse().ok()))
}
