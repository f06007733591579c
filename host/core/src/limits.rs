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
    /// Machines one deploy may create (clones), its blast radius; `None`: as many as the app had when
    /// the deploy started plus one per process group (see [`Limits::creation_bound`]).
    #[serde(default)]
    pub new_machines: Option<u64>,
    /// Real time the compiler may spend on one component (a cache hit compiles nothing).
    #[serde(default = "default_compile_timeout")]
    pub compile_timeout: Duration,
}

/// The default of [`Limits::host_calls`].
pub const DEFAULT_HOST_CALLS: u64 = 1_000_000;

/// The default of [`Limits::journal_bytes`]: 1 GiB.
pub const DEFAULT_JOURNAL_BYTES: u64 = 1 << 30;

/// The default of [`Limits::compile_timeout`]: the largest real components (componentize-py, about
/// 18 MB) compile in seconds; two minutes leaves room for a slow shared runner and none for a
/// pathological component to hold it.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

fn default_compile_timeout() -> Duration {
    DEFAULT_COMPILE_TIMEOUT
}

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
            new_machines: None,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
        }
    }
}

impl Limits {
    /// How many machines a deploy that started with `fleet` machines in `groups` process groups may
    /// create: `new_machines` when set, else the fleet again plus one per group. That is enough for
    /// every built-in (blue/green clones the whole fleet once, a canary one machine per group, a
    /// surge strategy one per group at a time) and bounds what a runaway strategy can bill: never more
    /// than twice the fleet (plus the groups) at any moment, whatever it destroys in between.
    pub fn creation_bound(&self, fleet: usize, groups: usize) -> u64 {
        self.new_machines.unwrap_or((fleet + groups) as u64)
    }
}
