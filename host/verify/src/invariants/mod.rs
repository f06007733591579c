//! The promises any deploy strategy must keep, judged from what the simulator saw.
//!
//! One implementation serves `cutover verify` and the property tests (`tests/support/invariants.rs`),
//! so the invariants a strategy author's CI checks are the ones the built-ins are tested against.
//! Each check reads only what every strategy produces — the fleet before and after, the simulator's
//! record of capacity, removals and cut connections, and the host calls made — never a strategy's
//! name, so it judges a user's strategy exactly as a built-in. See the parent module for why each
//! invariant is universal.
//!
//! The invariants are split by when they are judged:
//!
//! - `outcome`: on how the deploy ended — its verdict and the fleet it left (`verdict`,
//!   `one-release`, `all-serving`, `nothing-lost`).
//! - `timeline`: at every change the simulator recorded along the way (`capacity`,
//!   `replacement-first`, `drain`, `weights`).
//!
//! `run` holds what a run is judged from ([`Setup`], [`Faults`], [`Observed`]) and the facts about a
//! run more than one invariant needs; `judgement` what judging one says ([`Verdict`], [`Violation`]);
//! `calls` how a violation names the host call behind it.

mod calls;
mod judgement;
mod outcome;
mod run;
mod timeline;

pub use judgement::{Verdict, Violation};
pub use run::{Faults, Observed, Setup};

use serde::Serialize;

/// One promise a strategy keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// The strategy returns a verdict: no trap, no sandbox limit, no endless run, no machine asked for
    /// past the deploy's blast radius.
    Sandbox,
    /// Success only when the new release can serve; failure only for a cause the scenario injected.
    Verdict,
    /// The fleet ends on one release: the new one on success, the previous one on failure.
    OneRelease,
    /// Every machine serves at the end (but one that crashed after the deploy last touched it).
    AllServing,
    /// As many machines per process group and region at the end as at the start: none lost, none
    /// left over.
    NothingLost,
    /// Serving machines of each process group never fall below the starting count minus
    /// `max_unavailable` (and a crashed machine).
    Capacity,
    /// A machine of the previous release is destroyed only once a new-release machine of its group
    /// passed its checks to replace it.
    ReplacementFirst,
    /// A machine is stopped or destroyed with open connections only after draining for
    /// `drain_timeout` (for strategies with that parameter).
    Drain,
    /// While both releases serve, the new one gets no more traffic than the weight the strategy set.
    Weights,
    /// The fleet ends on exactly one release, all serving, nothing cordoned or stopped that was not
    /// before, nothing left over — transient platform errors excuse none of it.
    CleanEnd,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 10] = [
        Self::Sandbox,
        Self::Verdict,
        Self::OneRelease,
        Self::AllServing,
        Self::NothingLost,
        Self::Capacity,
        Self::ReplacementFirst,
        Self::Drain,
        Self::Weights,
        Self::CleanEnd,
    ];

    /// The invariant's short name, as reports and `--json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Verdict => "verdict",
            Self::OneRelease => "one-release",
            Self::AllServing => "all-serving",
            Self::NothingLost => "nothing-lost",
            Self::Capacity => "capacity",
            Self::ReplacementFirst => "replacement-first",
            Self::Drain => "drain",
            Self::Weights => "weights",
            Self::CleanEnd => "clean-end",
        }
    }

    /// One sentence saying what the invariant promises.
    pub fn promise(self) -> &'static str {
        match self {
            Self::Sandbox => {
                "the strategy returns a verdict without trapping, hitting a sandbox limit or asking for \
                 machines past the deploy's blast radius"
            }
            Self::Verdict => {
                "the deploy fails when the new release cannot pass its checks in time, and only for an \
                 injected cause"
            }
            Self::OneRelease => {
                "the fleet ends on one release: the new one on success, the previous one on failure"
            }
            Self::AllServing => "every machine is started, uncordoned and passing at the end",
            Self::NothingLost => "as many machines per process group and region at the end as at the start",
            Self::Capacity => {
                "serving machines of each process group never drop below the start minus max_unavailable"
            }
            Self::ReplacementFirst => {
                "no machine of the previous release is destroyed before its replacement passed its checks"
            }
            Self::Drain => "no machine is cut off with open connections before drain_timeout",
            Self::Weights => {
                "the new release never gets more traffic than the weight set for it while both serve"
            }
            Self::CleanEnd => {
                "one release, all serving, nothing cordoned, stopped or left over at the end, even when \
                 API calls failed along the way"
            }
        }
    }
}

/// Judge one run against every invariant, in [`Invariant::ALL`] order.
pub fn check(setup: &Setup, seen: &Observed) -> Vec<(Invariant, Verdict)> {
    let verdict = match seen.result {
        Err(sandbox) => {
            let v = Verdict::Fail(Violation::new(format!("the sandbox stopped the strategy: {sandbox}")));
            // Nothing else can be judged of a run the sandbox ended: the fleet is where it stopped.
            return Invariant::ALL
                .iter()
                .map(|&i| match i {
                    Invariant::Sandbox => (i, v.clone()),
                    _ => (i, judgement::na("the sandbox stopped the run")),
                })
                .collect();
        }
        Ok(v) => v,
    };
    let gave_up = run::gave_up(setup, verdict);
    Invariant::ALL
        .iter()
        .map(|&i| {
            let v = match i {
                Invariant::Sandbox => calls::blast_radius(seen.events),
                Invariant::Verdict => outcome::check_verdict(setup, verdict),
                Invariant::OneRelease => outcome::one_release(setup, seen, verdict, gave_up),
                Invariant::AllServing => outcome::all_serving(setup, seen, verdict, gave_up),
                Invariant::NothingLost => outcome::nothing_lost(setup, seen, verdict, gave_up),
                Invariant::Capacity => timeline::capacity(setup, seen, gave_up),
                Invariant::ReplacementFirst => timeline::replacement_first(setup, seen),
                Invariant::Drain => timeline::drain(setup, seen),
                Invariant::Weights => timeline::weights(setup, seen),
                Invariant::CleanEnd => outcome::clean_end(setup, seen, verdict),
            };
            (i, v)
        })
        .collect()
}
