//! What a run is judged from — what it was asked to do and what it did — and the facts about a run
//! that more than one invariant turns on (a standby, a strategy that gave up, a release that must fail).

use cutover_core::contract::MaxUnavailable;
use cutover_core::events::Event;
use cutover_core::{ErrorKind, Machine, MachineState, OpError, Release};
use cutover_sim::{Availability, Cut};
use std::time::Duration;

/// The fault a scenario injects, as far as judging a run needs to know it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of API calls failing with a transient error.
    pub api_error_rate: f64,
    /// The new release boots but never passes its checks.
    pub unhealthy: bool,
    /// The new release boots slower than `wait_timeout`.
    pub slow: bool,
    /// A machine of the starting fleet crashes, by id, this long into the deploy.
    pub crash: Option<(String, Duration)>,
    /// The new release regresses on what the strategy was told to judge (a scenario file's
    /// `expect = "fail"`: its metrics are worse than the previous release's).
    pub regression: bool,
}

/// What the run was asked to do.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The starting fleet.
    pub fleet: Vec<Machine>,
    /// The release the fleet starts on: where a failed deploy must leave it.
    pub previous: Release,
    /// The release being deployed: where a successful deploy must leave the fleet.
    pub target: Release,
    /// The plan's `max_unavailable`, which bounds `capacity`.
    pub max_unavailable: MaxUnavailable,
    /// What the scenario injects, which excuses some failures.
    pub faults: Faults,
    /// The strategy's `drain_timeout`, when it has one.
    pub drain_timeout: Option<Duration>,
    /// The strategy does not promise to keep the app up (like `immediate`): capacity is not checked,
    /// and it may report success for a release that cannot serve.
    pub allow_downtime: bool,
    /// The strategy keeps the release it replaces as stopped machines for a rollback that is a switch
    /// (like bluegreen's `retain_blue`): machines of that release that are not started at the end are
    /// standbys, left out of `one-release`, `all-serving` and `nothing-lost`. A running leftover still
    /// counts.
    pub allow_standby: bool,
}

/// What the run did.
pub struct Observed<'a> {
    /// The sandbox's error as text, or the strategy's verdict.
    pub result: &'a Result<Result<(), OpError>, String>,
    /// Host calls the strategy made (at least every call that changes the fleet).
    pub events: &'a [Event],
    /// The simulator's record of serving machines per group, removals and traffic shares over time.
    pub availability: &'a Availability,
    /// Machines stopped or destroyed with connections still open.
    pub cuts: &'a [Cut],
    /// The fleet once it settled after the deploy.
    pub end: &'a [Machine],
}

/// A machine kept stopped on the release the fleet is not on, when the strategy says it keeps them.
pub(super) fn standby(setup: &Setup, m: &Machine, verdict: &Result<(), OpError>) -> bool {
    let other = if verdict.is_ok() { &setup.previous } else { &setup.target };
    setup.allow_standby
        && m.release.version == other.version
        && matches!(m.state, MachineState::Stopped | MachineState::Suspended | MachineState::Created)
}

/// A failure the scenario explains without a fault of the strategy: transient errors that outlasted
/// its retries, or the crash of a machine it was waiting on (its error names the machine). The
/// strategy then stops where it is, and its error says what is left; the fleet may be mixed.
pub(super) fn gave_up(setup: &Setup, verdict: &Result<(), OpError>) -> bool {
    let Err(e) = verdict else { return false };
    let transient =
        setup.faults.api_error_rate > 0.0 && matches!(e.kind, ErrorKind::Platform | ErrorKind::Timeout);
    transient || crash_named(setup, e)
}

/// Whether the strategy's error names the machine the scenario crashed.
fn crash_named(setup: &Setup, e: &OpError) -> bool {
    setup.faults.crash.as_ref().is_some_and(|(id, _)| e.message.contains(id.as_str()))
}

/// Whether the deploy must fail: the new release cannot pass its checks within `wait_timeout`, or
/// regresses on what the strategy judges.
pub(super) fn must_fail(setup: &Setup) -> bool {
    setup.faults.unhealthy || setup.faults.slow || setup.faults.regression
}
