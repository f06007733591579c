//! What the simulator records for a verifier: serving capacity over time, machines removed, and
//! long-lived connections cut.
//!
//! These are the records only; `tracking` fills them in as the world changes. They are public because
//! the conformance checks (`cutover-verify`) judge a strategy by them: never below the capacity floor,
//! no old machine gone before its replacement passes, no connection cut that a drain would have saved.

use std::collections::BTreeMap;

/// Long-lived connections a stop or destroy cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Virtual ms of the stop or destroy.
    pub at_ms: u64,
    /// The machine stopped or destroyed.
    pub id: String,
    /// Connections still open when it happened.
    pub open: u32,
    /// How long the machine had been cordoned (draining) by then; none if it never was.
    pub cordoned_ms: Option<u64>,
}

/// A machine destroyed while tracking was on, and what its process group had passing at that instant
/// (so a verifier can tell whether an old machine went before its replacement was healthy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Virtual ms of the destroy.
    pub at_ms: u64,
    /// The machine destroyed.
    pub id: String,
    /// Its process group: capacity is judged per group.
    pub group: String,
    /// The release version the machine ran.
    pub version: u64,
    /// Machines of the group, other than this one, started and passing every check (cordoned or not),
    /// by release version.
    pub passing: BTreeMap<u64, usize>,
}

/// Serving capacity over time, recorded after every change when tracking is on.
#[derive(Debug, Clone, Default)]
pub struct Availability {
    /// Machines of the tracked app serving when tracking started.
    pub baseline: usize,
    /// (virtual ms, machines serving) after each change.
    pub samples: Vec<(u64, usize)>,
    /// (virtual ms, share of new requests per release version in percent) after each change.
    pub traffic: Vec<(u64, Vec<(u64, f64)>)>,
    /// Machines serving per process group when tracking started.
    pub group_baseline: BTreeMap<String, usize>,
    /// (virtual ms, machines serving per process group) after each change.
    pub groups: Vec<(u64, BTreeMap<String, usize>)>,
    /// Machines destroyed since tracking started.
    pub removals: Vec<Removal>,
    /// The app tracked: a neighbour app's machines never count.
    pub(crate) app: String,
}

impl Availability {
    /// The largest shortfall below the baseline at any recorded instant.
    pub fn max_unavailable(&self) -> usize {
        self.samples.iter().map(|&(_, serving)| self.baseline.saturating_sub(serving)).max().unwrap_or(0)
    }
}
