//! The fleet operations every strategy composes: list, wait until serving, stop, clone, count
//! connections — each retrying transient errors, each reporting per machine what went wrong.

use crate::errors::is_transient;
use crate::retry::{Retry, retry, with_retries};
use crate::runtime::{self, Level};
use crate::types::{Machine, MachineError, MachineState, Release};
use crate::{DeployPlan, Error, describe_error, machines, traffic};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The ids of `machines`, in order (batch calls take ids).
pub fn ids<M: Borrow<Machine>>(machines: &[M]) -> Vec<String> {
    machines.iter().map(|m| m.borrow().id.clone()).collect()
}

/// The ids of `ids` that no failure in `failures` names, in order: the machines a batch call went
/// through on.
pub(crate) fn not_failed(ids: &[String], failures: &[MachineError]) -> Vec<String> {
    let failed: BTreeSet<&str> = failures.iter().map(|f| f.id.as_str()).collect();
    ids.iter().filter(|id| !failed.contains(id.as_str())).cloned().collect()
}

/// A machine that was meant to be serving before the deploy. Stopped machines are moved but left
/// stopped, as flyctl does, so they are neither waited on nor put back in rotation.
pub fn should_run(state: MachineState) -> bool {
    !matches!(state, MachineState::Stopped | MachineState::Suspended | MachineState::Created)
}

/// The app's machines, retrying transient (`platform`) errors like every other call.
pub fn list_machines(retries: impl Into<Retry>) -> Result<Vec<Machine>, Error> {
    let retries: Retry = retries.into();
    retry(retries, "listing machines", machines::list)
}

/// Which wait of [`wait_serving`] failed, and for which machines.
pub enum NotServing {
    /// Some machines never reached `started` (listed first; with contract 0.2, machines that started
    /// but did not pass follow: every machine not listed is serving).
    NotStarted(Vec<MachineError>),
    /// All started, but some did not pass their checks.
    Unhealthy(Vec<MachineError>),
}

impl NotServing {
    /// The machines that failed, whichever wait it was.
    pub fn failures(self) -> Vec<MachineError> {
        match self {
            Self::NotStarted(f) | Self::Unhealthy(f) => f,
        }
    }
}

/// Wait until `ids` are started, then until they pass their checks, each wait bounded by `timeout_ms`
/// and retried on transient errors: the step every strategy takes before letting machines serve.
///
/// With contract 0.2 it is one pipeline: each machine's checks are waited on as soon as it started,
/// and the waits hold none of the host's operation slots, so waiting on thousands of new machines is
/// not thousands of round trips through them.
#[cfg(not(feature = "contract-0-1"))]
pub fn wait_serving(retries: impl Into<Retry>, ids: &[String], timeout_ms: u64) -> Result<(), NotServing> {
    use crate::pipeline::{StateWait, Step, every_machine, pipeline};
    let steps = [
        Step::WaitState(StateWait { state: MachineState::Started, timeout_ms }),
        Step::WaitHealthy(timeout_ms),
    ];
    let Err(unfinished) = pipeline(retries, ids, &steps, every_machine()) else { return Ok(()) };
    let (mut failed, unhealthy): (Vec<_>, Vec<_>) = unfinished.failed.into_iter().partition(|f| f.step == 0);
    let errors = |f: Vec<crate::pipeline::StepError>| -> Vec<MachineError> {
        f.into_iter().map(|f| MachineError { id: f.id, error: f.error }).collect()
    };
    if failed.is_empty() {
        return Err(NotServing::Unhealthy(errors(unhealthy)));
    }
    failed.extend(unhealthy);
    Err(NotServing::NotStarted(errors(failed)))
}

/// [`wait_serving`] in two batch calls (contract 0.1, which has no pipelines).
#[cfg(feature = "contract-0-1")]
pub fn wait_serving(retries: impl Into<Retry>, ids: &[String], timeout_ms: u64) -> Result<(), NotServing> {
    let retries: Retry = retries.into();
    with_retries(retries, ids, |ids| machines::wait_state(ids, MachineState::Started, timeout_ms))
        .map_err(NotServing::NotStarted)?;
    with_retries(retries, ids, |ids| crate::health::wait_healthy(ids, timeout_ms))
        .map_err(NotServing::Unhealthy)
}

/// Stop `ids` gracefully (the plan's kill signal, killed after its kill timeout) and wait until none of
/// them runs, retrying transient errors: the step before destroying machines or leaving them stopped.
///
/// A machine whose process exits on its own while it stops (a crash) ends `failed` rather than
/// `stopped`: it is not running either, so it counts as stopped. The wait for `stopped` cannot see
/// that, so such a machine keeps its wait until `wait_timeout`; the machines whose wait timed out are
/// then looked up once (one `list`), and only those still running, or whose state could not be read,
/// are failures.
pub fn stop_machines(
    retries: impl Into<Retry>,
    ids: &[String],
    plan: &DeployPlan,
) -> Result<(), Vec<MachineError>> {
    let retries: Retry = retries.into();
    with_retries(retries, ids, |ids| machines::stop(ids, &plan.kill_signal, plan.kill_timeout_ms))?;
    let Err(failures) = with_retries(retries, ids, |ids| {
        machines::wait_state(ids, MachineState::Stopped, plan.wait_timeout_ms)
    }) else {
        return Ok(());
    };
    if !failures.iter().any(|f| matches!(f.error, Error::Timeout(_))) {
        return Err(failures);
    }
    let Ok(fleet) = list_machines(retries) else { return Err(failures) };
    let down = |id: &str| match fleet.iter().find(|m| m.id == id) {
        // Gone altogether counts as down too.
        None => true,
        Some(m) => matches!(m.state, MachineState::Stopped | MachineState::Failed | MachineState::Destroyed),
    };
    let left: Vec<MachineError> =
        failures.into_iter().filter(|f| !(matches!(f.error, Error::Timeout(_)) && down(&f.id))).collect();
    if left.is_empty() {
        runtime::log(Level::Info, "machines that failed while stopping are down: counted as stopped");
        Ok(())
    } else {
        Err(left)
    }
}

/// Refuse machines with volumes before cloning them: a volume attaches to one machine only, so a clone
/// (a `clone` machine: "green", "canary") would start without the data (the clone gets no volume at all).
pub fn refuse_volumes<M: Borrow<Machine>>(strategy: &str, clone: &str, sources: &[M]) -> Result<(), Error> {
    let with_volumes: Vec<&Machine> =
        sources.iter().map(Borrow::borrow).filter(|m: &&Machine| !m.volumes.is_empty()).collect();
    let Some(first) = with_volumes.first() else { return Ok(()) };
    Err(Error::Invalid(format!(
        "{strategy} cannot deploy {} of the {} machine(s) because they have volumes (machine {} has {}): a \
         volume attaches to one machine only, so a {clone} clone cannot get its data. Use strategy = \
         \"rolling\", which updates machines in place and keeps their volumes. Nothing was changed.",
        with_volumes.len(),
        sources.len(),
        first.id,
        first.volumes.join(", ")
    )))
}

/// One `clone-from` call, shaped like a batch operation so `with_retries` re-clones only the failed
/// sources. Clones are created cordoned unless `routable` (then in rotation once started and passing,
/// as the platform routes). Each clone created is recorded in `clone_of` under its source; a failure
/// is reported under the source's id.
pub fn clone_machines(
    sources: &[String],
    target: &Release,
    routable: bool,
    clone_of: &mut BTreeMap<String, String>,
) -> Result<(), Vec<MachineError>> {
    let results = machines::clone_from(sources, target, routable);
    let mut failures = Vec::new();
    for (source, result) in sources.iter().zip(results) {
        match result {
            Ok(clone) => {
                clone_of.insert(source.clone(), clone);
            }
            Err(error) => failures.push(MachineError { id: source.clone(), error }),
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures) }
}

/// Count the open connections of `ids` in one call, counting again (as long as `retries` allows) the
/// machines whose count failed with a transient `platform` error. One result per id, in order.
pub fn count_connections(retries: impl Into<Retry>, ids: &[String]) -> Vec<(String, Result<u32, Error>)> {
    let retries: Retry = retries.into();
    let mut results: Vec<(String, Result<u32, Error>)> =
        ids.iter().cloned().zip(traffic::connections(ids)).collect();
    let mut started: Option<u64> = None;
    for attempt in 1.. {
        let again: Vec<String> = results
            .iter()
            .filter(|(_, r)| r.as_ref().is_err_and(is_transient))
            .map(|(id, _)| id.clone())
            .collect();
        // Without this bound a platform that keeps failing would be counted again forever.
        if again.is_empty() || !retries.allows(attempt, &mut started) {
            break;
        }
        runtime::log(
            Level::Warn,
            &format!(
                "counting connections failed for {} machine(s), {}",
                again.len(),
                retries.label(attempt)
            ),
        );
        runtime::sleep(crate::retry::backoff_ms(attempt));
        let recount: HashMap<String, Result<u32, Error>> =
            again.iter().cloned().zip(traffic::connections(&again)).collect();
        for (id, r) in &mut results {
            if let Some(new) = recount.get(id) {
                *r = new.clone();
            }
        }
    }
    results
}

/// Go back to routing by machine count (`set-weights([])`), so no release stays pinned and the next
/// deploy starts from the default. A failure is only logged: the fleet itself is fine. Whether they
/// were cleared.
pub fn clear_weights(retries: impl Into<Retry>) -> bool {
    match retry(retries.into(), "clearing traffic weights", || traffic::set_weights(&[])) {
        Ok(()) => {
            runtime::log(Level::Info, "traffic weights cleared: new connections follow machine count");
            true
        }
        Err(e) => {
            runtime::log(
                Level::Warn,
                &format!("clearing traffic weights failed ({}); check `traffic.weights`", describe_error(&e)),
            );
            false
        }
    }
}
