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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(3600),
            cpu_budget: Duration::from_secs(2),
        }
    }
}
