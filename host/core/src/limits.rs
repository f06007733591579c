//! A strategy run's resource limits, as config sets them and the runtime enforces them
//! (`cutover_runtime::limits` holds the enforcement).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits for one strategy run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Linear memory, in bytes, for any one of the component's memories.
    pub memory_bytes: u64,
    /// Real time for the whole run (`deploy` from start to return).
    pub deadline: Duration,
    /// Real time the guest may compute between two host calls.
    pub cpu_budget: Duration,
    /// Host calls the whole run may make (every call counts: a read, a log line, `now`).
    #[serde(default = "default_host_calls")]
    pub host_calls: u64,
    /// Bytes of events the run may put in the journal (the host's own opening and closing events
    /// aside).
    #[serde(default = "default_journal_bytes")]
    pub journal_bytes: u64,
}

/// The default of [`Limits::host_calls`].
pub const DEFAULT_HOST_CALLS: u64 = 1_000_000;

/// The default of [`Limits::journal_bytes`]: 1 GiB.
pub const DEFAULT_JOURNAL_BYTES: u64 = 1 << 30;

fn default_host_calls() -> u64 {
    DEFAULT_HOST_CALLS
}

fn default_journal_bytes() -> u64 {
    DEFAULT_JOURNAL_BYTES
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(3600),
            cpu_budget: Duration::from_secs(2),
            host_calls: DEFAULT_HOST_CALLS,
            journal_bytes: DEFAULT_JOURNAL_BYTES,
        }
    }
}
