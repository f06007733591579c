//! Pipelines (contract 0.2): the same steps on many machines, each machine going on to its next step
//! as soon as its own is done.
//!
//! A batch call returns when its slowest machine is done; a strategy that cordons, updates, waits and
//! uncordons a batch in four calls waits four times for the slowest machine of the batch, and at
//! thousands of machines that is most of a deploy. [`pipeline`] hands the host the whole sequence:
//! machine A is updated while B is still being cordoned, and A serves again while C still boots. With
//! a window, one pipeline is a whole roll that keeps `max_unavailable` machines moving: a machine back
//! in service lets the next one in.
//!
//! [`pipeline`] retries like [`crate::with_retries`]: a machine whose step failed with a transient
//! (`platform`) error goes through again from that step, as long as the policy allows for that machine
//! and step (`Retry::allows_in_pipeline`: the pauses, not the clock, spend the budget).

use crate::errors::is_transient;
use crate::machines;
use crate::retry::{Retry, pause_before_retry};
use crate::runtime::{self, Level};
use crate::types::{MachineError, MachineState, Release};
use crate::{DeployPlan, Error};
use std::collections::BTreeMap;

pub use crate::machines::{DrainWait, PipelineOptions, StateWait, Step, StepError, StopSpec};

/// The machines of a pipeline that did not take every step, once retries are spent.
#[derive(Debug, Clone, Default)]
pub struct Unfinished {
    /// Machines that failed a step: lasting failures first, in the order the call listed them, then
    /// transient ones that outlasted their retries (as [`crate::with_retries`] orders them). `step`
    /// counts from 0 in the steps as given.
    pub failed: Vec<StepError>,
    /// Machines never started because another failed first (with `stop_on_failure`).
    pub not_started: Vec<String>,
}

impl Unfinished {
    /// The failures as a batch call reports them (what [`crate::explain`] takes).
    pub fn errors(&self) -> Vec<MachineError> {
        self.failed.iter().map(|f| MachineError { id: f.id.clone(), error: f.error.clone() }).collect()
    }

    /// The machines that failed, whichever step.
    pub fn failed_ids(&self) -> Vec<String> {
        self.failed.iter().map(|f| f.id.clone()).collect()
    }
}

/// Options for a pipeline without a window that takes every machine whatever happens to the others.
pub fn every_machine() -> PipelineOptions {
    PipelineOptions { window: 0, stop_on_failure: false }
}

/// Take `steps` on every machine of `ids` (see the module's introduction), retrying transient failures
/// from the step that failed, as long as `policy` allows (a count converts into a policy: see
/// [`Retry`]).
pub fn pipeline(
    policy: impl Into<Retry>,
    ids: &[String],
    steps: &[Step],
    options: PipelineOptions,
) -> Result<(), Unfinished> {
    let policy = policy.into();
    let mut unfinished = Unfinished::default();
    // Machines still to go, by the step they go on from, each with the transient error that sent it
    // back (none for a machine not started yet).
    let mut todo: BTreeMap<u32, Vec<(String, Option<StepError>)>> = BTreeMap::new();
    if !ids.is_empty() {
        todo.insert(0, ids.iter().map(|id| (id.clone(), None)).collect());
    }
    // Per machine and step, its retries so far: each step of each machine is one operation with a
    // policy of its own, as with `with_retries`, however many others share the pipeline (see
    // `Retry::allows_in_pipeline`). Per machine alone, a cordon that failed early would count against
    // the wait that fails minutes later.
    let mut tries: BTreeMap<(String, u32), u32> = BTreeMap::new();
    loop {
        let mut transient: Vec<StepError> = Vec::new();
        let mut not_started: Vec<String> = Vec::new();
        let mut deferred: Vec<(u32, String, Option<StepError>)> = Vec::new();
        // Machines furthest along first. A machine that failed half-way may be out of service, so with a
        // window, once a call leaves a failure the calls after it wait for the next round: starting a
        // full window of others beside the failed machine would take more out than the window allows.
        let mut calls = std::mem::take(&mut todo).into_iter().rev();
        while let Some((from, machines)) = calls.next() {
            let ids: Vec<String> = machines.iter().map(|(id, _)| id.clone()).collect();
            let Err(failure) = machines::pipeline(&ids, &steps[from as usize..], options) else { continue };
            not_started.extend(failure.not_started);
            for mut f in failure.failed {
                f.step += from;
                if is_transient(&f.error) {
                    transient.push(f);
                } else {
                    unfinished.failed.push(f);
                }
            }
            if options.window > 0 {
                deferred.extend(
                    calls.by_ref().flat_map(|(from, ms)| ms.into_iter().map(move |(id, e)| (from, id, e))),
                );
            }
        }
        // Each machine that failed for now goes again from the step that failed, while its policy
        // allows; one that outlasts it has failed.
        let mut again: Vec<(u32, String, Option<StepError>)> = Vec::new();
        let mut attempt = 0;
        for f in transient {
            let n = tries.entry((f.id.clone(), f.step)).or_default();
            *n += 1;
            if policy.allows_in_pipeline(*n) {
                attempt = attempt.max(*n);
                again.push((f.step, f.id.clone(), Some(f)));
            } else {
                unfinished.failed.push(f);
            }
        }
        // Machines half-way go on with the retries. Those not started yet go again too, unless a
        // lasting failure stopped the pipeline: then they stay not started.
        let lasting = !unfinished.failed.is_empty();
        for (from, id, error) in deferred {
            match error {
                None if lasting => unfinished.not_started.push(id),
                error => again.push((from, id, error)),
            }
        }
        if lasting {
            unfinished.not_started.append(&mut not_started);
        } else {
            again.extend(not_started.into_iter().map(|id| (0, id, None)));
        }
        let Some(first) = again.iter().find_map(|(_, _, e)| e.clone()) else {
            unfinished.not_started.extend(again.into_iter().map(|(_, id, _)| id));
            break;
        };
        if attempt > 0 {
            let retrying = again.iter().filter(|(_, _, e)| e.is_some()).count();
            pause_before_retry(policy, attempt, retrying, &first.error);
        }
        for (from, id, error) in again {
            todo.entry(from).or_default().push((id, error));
        }
    }
    if unfinished.failed.is_empty() && unfinished.not_started.is_empty() { Ok(()) } else { Err(unfinished) }
}

/// The steps that move a machine in place to `release`: cordon (when the platform can), update, and
/// for a machine that was serving, wait until started and passing, then uncordon. A stopped machine is
/// updated and stays stopped, its routing as it was (as flyctl does).
pub fn move_steps(release: &Release, serving: bool, can_cordon: bool, wait_timeout_ms: u64) -> Vec<Step> {
    let mut steps = Vec::with_capacity(5);
    if can_cordon {
        steps.push(Step::Cordon);
    }
    steps.push(Step::Update(release.clone()));
    if serving {
        steps.push(Step::WaitState(StateWait { state: MachineState::Started, timeout_ms: wait_timeout_ms }));
        steps.push(Step::WaitHealthy(wait_timeout_ms));
    }
    if can_cordon {
        steps.push(Step::Uncordon);
    }
    steps
}

/// Which part of [`retire`] a machine did not get through.
#[derive(Debug, Clone, Default)]
pub struct NotRetired {
    /// Still running, or not known to be down: a stop is still to do (and the destroy, if asked).
    pub not_stopped: Vec<MachineError>,
    /// Down, but not destroyed.
    pub not_destroyed: Vec<MachineError>,
}

impl NotRetired {
    /// Whether every machine got through.
    pub fn is_empty(&self) -> bool {
        self.not_stopped.is_empty() && self.not_destroyed.is_empty()
    }
}

/// Stop `ids` gracefully (the plan's kill signal, killed after its kill timeout), wait until each is
/// down and, with `destroy`, destroy it: each machine on its own, so the first ones are gone while the
/// last still stop.
///
/// A machine whose process exits on its own while it stops ends `failed` rather than `stopped`; the
/// wait cannot see that and runs out of time. Machines whose wait timed out are looked up once (one
/// `list`), and those down are counted as stopped (and destroyed), as [`crate::stop_machines`] does.
pub fn retire(
    policy: impl Into<Retry>,
    ids: &[String],
    plan: &DeployPlan,
    destroy: bool,
) -> Result<(), NotRetired> {
    let stop = Step::Stop(StopSpec { signal: plan.kill_signal.clone(), timeout_ms: plan.kill_timeout_ms });
    see_down(policy.into(), ids, plan, destroy, Some(stop))
}

/// [`retire`] for machines already asked to stop: wait until each is down and, with `destroy`,
/// destroy it.
pub fn retire_stopping(
    policy: impl Into<Retry>,
    ids: &[String],
    plan: &DeployPlan,
    destroy: bool,
) -> Result<(), NotRetired> {
    see_down(policy.into(), ids, plan, destroy, None)
}

/// [`retire`]'s pipeline, from `stop` when there is one.
fn see_down(
    policy: Retry,
    ids: &[String],
    plan: &DeployPlan,
    destroy: bool,
    stop: Option<Step>,
) -> Result<(), NotRetired> {
    // The index of the wait among the steps: a failure before it or in it leaves the machine up.
    let wait = usize::from(stop.is_some());
    let mut steps: Vec<Step> = stop.into_iter().collect();
    steps.push(Step::WaitState(StateWait { state: MachineState::Stopped, timeout_ms: plan.wait_timeout_ms }));
    if destroy {
        steps.push(Step::Destroy);
    }
    let Err(unfinished) = pipeline(policy, ids, &steps, every_machine()) else { return Ok(()) };
    let mut left = NotRetired::default();
    let mut timed_out: Vec<MachineError> = Vec::new();
    for f in unfinished.failed {
        let e = MachineError { id: f.id, error: f.error };
        match f.step as usize {
            step if step == wait && matches!(e.error, Error::Timeout(_)) => timed_out.push(e),
            step if step <= wait => left.not_stopped.push(e),
            _ => left.not_destroyed.push(e),
        }
    }
    if !timed_out.is_empty() {
        // Unreadable, the fleet shows nothing down: every timed-out machine stays a failure.
        let fleet = crate::list_machines(policy).ok();
        let down = |id: &str| {
            fleet.as_ref().is_some_and(|fleet| match fleet.iter().find(|m| m.id == id) {
                None => true,
                Some(m) => {
                    matches!(m.state, MachineState::Stopped | MachineState::Failed | MachineState::Destroyed)
                }
            })
        };
        let (down, up): (Vec<MachineError>, Vec<MachineError>) =
            timed_out.into_iter().partition(|e| down(&e.id));
        left.not_stopped.extend(up);
        if !down.is_empty() {
            runtime::log(Level::Info, "machines that failed while stopping are down: counted as stopped");
            if destroy {
                let down: Vec<String> = down.into_iter().map(|e| e.id).collect();
                if let Err(f) = crate::with_retries(policy, &down, machines::destroy) {
                    left.not_destroyed.extend(f);
                }
            }
        }
    }
    if left.is_empty() { Ok(()) } else { Err(left) }
}
