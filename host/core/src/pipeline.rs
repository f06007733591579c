//! Pipelines (contract 0.2's `machines.pipeline`): the same steps run on each of many machines, each
//! machine going on to its next step as soon as its own step is done.
//!
//! A batch call returns when its slowest machine is done, so a strategy that cordons, then updates,
//! then waits, then uncordons a batch of 3,300 machines waits four times for the slowest of 3,300. A
//! pipeline hands the host the whole sequence at once: machine A is updated while B is still being
//! cordoned, and A is back in rotation while C still boots. `window` bounds how many machines are in
//! the middle of their steps at once, which is what `max_unavailable` means for a roll; with it, one
//! pipeline over a whole process group replaces its batches, and a machine leaving the window lets the
//! next one in.
//!
//! These are the host's own types, free of any WIT version, as journaled: one `machines.pipeline`
//! event per call, whose reply names each machine that failed, at which step, and those never started.

use crate::error::OpError;
use crate::machine::{MachineState, Release};
use serde::{Deserialize, Serialize};

/// One step of a pipeline, run on one machine; each mirrors the batch call of the same name for that
/// machine alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `traffic.cordon`: no new connections.
    Cordon,
    /// `traffic.uncordon`: back in rotation.
    Uncordon,
    /// `machines.update` to `target`.
    Update {
        /// The release the machine moves to.
        target: Release,
    },
    /// `machines.start`.
    Start,
    /// `machines.stop`: `signal`, then killed after `timeout_ms`.
    Stop {
        /// The signal sent first, by name.
        signal: String,
        /// Milliseconds the machine has to exit before it is killed.
        timeout_ms: u64,
    },
    /// `machines.destroy`.
    Destroy,
    /// `machines.wait-state`, for this machine; `timeout_ms` counts from the step's start.
    WaitState {
        /// The state to reach.
        state: MachineState,
        /// Milliseconds the machine has from the start of this step.
        timeout_ms: u64,
    },
    /// `health.wait-healthy`, for this machine; `timeout_ms` counts from the step's start.
    WaitHealthy {
        /// Milliseconds the machine has from the start of this step.
        timeout_ms: u64,
    },
    /// Count the machine's open connections every `poll_ms` until none is left (a machine gone counts
    /// as none). A count that fails with a transient `platform` error is taken again at the next
    /// poll; when `timeout_ms` has passed since the step started, the step fails with `timeout`, so
    /// the strategy knows which machines it would cut and decides.
    WaitDrained {
        /// Milliseconds between two counts.
        poll_ms: u64,
        /// Milliseconds after which the machine goes on, connections or not.
        timeout_ms: u64,
    },
}

impl Step {
    /// The contract operation this step performs (what a sandbox grant must allow).
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Cordon => "traffic.cordon",
            Self::Uncordon => "traffic.uncordon",
            Self::Update { .. } => "machines.update",
            Self::Start => "machines.start",
            Self::Stop { .. } => "machines.stop",
            Self::Destroy => "machines.destroy",
            Self::WaitState { .. } => "machines.wait-state",
            Self::WaitHealthy { .. } => "health.wait-healthy",
            Self::WaitDrained { .. } => "traffic.connections",
        }
    }

    /// Whether the step only waits (takes no slot of the host's `concurrency`: a wait is the platform's
    /// to end, and holding a slot through a machine's boot would starve the others' changes).
    pub fn waits(&self) -> bool {
        matches!(self, Self::WaitState { .. } | Self::WaitHealthy { .. } | Self::WaitDrained { .. })
    }
}

/// How a pipeline runs its machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PipelineOptions {
    /// At most this many machines between their first step and the end of their last at once, in the
    /// order given (0: no bound but the host's concurrency, which bounds operations, not machines). A
    /// machine that failed a step may still be out of service, so it keeps its place until the call
    /// ends; once every place is so held, the machines left are answered as not started.
    pub window: u32,
    /// After the first failure other than a transient (`platform`) one, which the strategy may
    /// retry, start no further machine: those are answered as not started, and machines already under
    /// way finish their steps.
    pub stop_on_failure: bool,
}

/// Why one machine of a pipeline stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    /// The machine.
    pub id: String,
    /// The step that failed, counted from 0 in the order given; the steps after it were not taken.
    pub step: u32,
    /// Why.
    pub error: OpError,
}

/// What became of the machines of a pipeline that did not take all their steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PipelineOutcome {
    /// Machines that failed a step, in the order the call listed them.
    pub failed: Vec<StepFailure>,
    /// Machines never started (after a failure, with `stop_on_failure`), in the order listed.
    pub not_started: Vec<String>,
}

impl PipelineOutcome {
    /// Whether every machine took every step.
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty() && self.not_started.is_empty()
    }

    /// Every machine of the call failing `step` with `error` (a refusal of the whole call).
    pub fn all_failed(ids: &[String], step: u32, error: &OpError) -> Self {
        Self {
            failed: ids.iter().map(|id| StepFailure { id: id.clone(), step, error: error.clone() }).collect(),
            not_started: Vec::new(),
        }
    }
}

/// The release the steps move a machine to, if one of them is an update.
pub fn update_target(steps: &[Step]) -> Option<&Release> {
    steps.iter().find_map(|s| match s {
        Step::Update { target } => Some(target),
        _ => None,
    })
}

/// A pipeline's effect as the batch calls that would have had it, step by step: for each step, the
/// machines that got through it (those that failed a later step included). What reads the event log
/// for the fleet's state (a report's timeline, a dashboard) takes these as it takes the batch calls,
/// at the pipeline's end: a pipeline's one event does not say when each machine took each step.
pub fn as_batch_calls(
    ids: &[String],
    steps: &[Step],
    outcome: &PipelineOutcome,
) -> Vec<crate::events::HostCall> {
    use crate::events::HostCall;
    let stopped_at = |id: &String| -> Option<u32> {
        if outcome.not_started.contains(id) {
            return Some(0);
        }
        outcome.failed.iter().find(|f| &f.id == id).map(|f| f.step)
    };
    let reached: Vec<(String, Option<u32>)> = ids.iter().map(|id| (id.clone(), stopped_at(id))).collect();
    steps
        .iter()
        .enumerate()
        .filter_map(|(k, step)| {
            let ids: Vec<String> = reached
                .iter()
                .filter(|(_, stop)| stop.is_none_or(|s| (k as u32) < s))
                .map(|(id, _)| id.clone())
                .collect();
            if ids.is_empty() {
                return None;
            }
            Some(match step {
                Step::Cordon => HostCall::Cordon { ids },
                Step::Uncordon => HostCall::Uncordon { ids },
                Step::Update { target } => HostCall::Update { ids, target: target.clone() },
                Step::Start => HostCall::Start { ids },
                Step::Stop { signal, timeout_ms } => {
                    HostCall::Stop { ids, signal: signal.clone(), timeout_ms: *timeout_ms }
                }
                Step::Destroy => HostCall::Destroy { ids },
                Step::WaitState { state, timeout_ms } => {
                    HostCall::WaitState { ids, state: *state, timeout_ms: *timeout_ms }
                }
                Step::WaitHealthy { timeout_ms } => HostCall::WaitHealthy { ids, timeout_ms: *timeout_ms },
                Step::WaitDrained { .. } => HostCall::Connections { ids },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::events::HostCall;

    #[test]
    fn batch_calls_follow_each_machine_as_far_as_it_got() {
        let v2 = Release { version: 2, image: "v2".into() };
        let steps = vec![
            Step::Cordon,
            Step::Update { target: v2.clone() },
            Step::WaitHealthy { timeout_ms: 1 },
            Step::Uncordon,
        ];
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let outcome = PipelineOutcome {
            failed: vec![StepFailure {
                id: "b".into(),
                step: 2,
                error: OpError::new(ErrorKind::Unhealthy, "x"),
            }],
            not_started: vec!["d".into()],
        };
        let calls = as_batch_calls(&ids, &steps, &outcome);
        let abc = vec!["a".to_string(), "b".into(), "c".into()];
        assert_eq!(calls[0], HostCall::Cordon { ids: abc.clone() });
        assert_eq!(calls[1], HostCall::Update { ids: abc, target: v2 });
        assert_eq!(calls[2], HostCall::WaitHealthy { ids: vec!["a".into(), "c".into()], timeout_ms: 1 });
        assert_eq!(calls[3], HostCall::Uncordon { ids: vec!["a".into(), "c".into()] });
        assert_eq!(calls.len(), 4);
    }
}
