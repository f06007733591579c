//! Giving the canary up: traffic back to the stable release, and the canary machines removed.

use crate::weights::{Fleet, shares, split};
use cutover_sdk::clear_weights;
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::types::MachineError;
use cutover_sdk::{
    DeployPlan, Error, Retry, describe_error, machines, retry, traffic, with_note, with_retries,
};

/// Give up before the promotion: every new connection back to the stable release (when `weighted` is
/// known, i.e. weights may have moved), the canaries removed, and `cause` turned into the deploy's error.
/// No stable machine was touched, so that is all it takes to be back where the deploy started.
pub(crate) fn abandon(
    retries: Retry,
    plan: &DeployPlan,
    weighted: Option<bool>,
    view: &Fleet,
    canaries: &[String],
    in_rotation: bool,
    cause: Error,
) -> Error {
    runtime::phase("remove canary");
    let mut notes = Vec::new();
    if weighted == Some(true) {
        match retry(retries, "setting traffic weights", || traffic::set_weights(&split(view, 0))) {
            Ok(()) => notes.push(format!(
                "new connections go to the stable release again ({})",
                shares(&split(view, 0))
            )),
            Err(e) => notes.push(format!(
                "sending every new connection back to the stable release failed ({}): the canaries may take \
                 their share until they are gone; check `traffic.weights`",
                describe_error(&e)
            )),
        }
    }
    notes.push(remove_canaries(retries, plan, canaries, in_rotation).unwrap_or_else(|(note, left)| {
        // Tagged, so `cutover resume` or the next deploy finds and removes them.
        let ids: Vec<String> = left.iter().map(|f| f.id.clone()).collect();
        let todo = cutover_sdk::leftover::Todo::StopAndDestroy;
        let untagged = cutover_sdk::leftover::tag(retries, &ids, todo, plan.target.version);
        if untagged.is_empty() {
            let note = note.replace(": destroy them by hand", "");
            format!("{note}; they are tagged as leftovers ({} by v{})", todo.as_str(), plan.target.version)
        } else {
            note
        }
    }));
    if weighted == Some(true) {
        clear_weights(retries);
    }
    let notes = notes.join("; ");
    runtime::log(Level::Warn, &format!("canary abandoned; {notes}"));
    // The cause first, then what the fleet is left with.
    with_note(
        cause,
        &format!(
            "; the stable release is untouched and serving ({} machine(s)); {notes}",
            view.stable_machines
        ),
    )
}

/// Remove the canaries: cordon, stop (the plan's signal and timeout) and destroy them when they took
/// traffic, destroy them at once when they never did. Says what happened (`Err` when canaries are
/// left), for the log or an error.
pub(crate) fn remove_canaries(
    retries: Retry,
    plan: &DeployPlan,
    canaries: &[String],
    in_rotation: bool,
) -> Result<String, (String, Vec<MachineError>)> {
    if canaries.is_empty() {
        return Ok("no canary machine was created".into());
    }
    if in_rotation {
        // Best effort: a canary that fails to cordon or stop is still destroyed below, which kills it.
        if let Err(failures) = with_retries(retries, canaries, traffic::cordon) {
            runtime::log(
                Level::Warn,
                &format!(
                    "cordoning {} canary machine(s) failed: {}",
                    failures.len(),
                    describe_error(&failures[0].error)
                ),
            );
        }
        if let Err(failures) = cutover_sdk::stop_machines(retries, canaries, plan) {
            runtime::log(
                Level::Warn,
                &format!(
                    "stopping {} canary machine(s) failed ({}); destroying them anyway",
                    failures.len(),
                    describe_error(&failures[0].error)
                ),
            );
        }
    }
    match with_retries(retries, canaries, machines::destroy) {
        Ok(()) => Ok(format!("the canary was removed ({} machine(s) destroyed)", canaries.len())),
        Err(left) => Err((
            format!(
                "removing the canary failed for {} of {} machine(s) (machine {}: {}), which {}: destroy them \
                 by hand",
                left.len(),
                canaries.len(),
                left[0].id,
                describe_error(&left[0].error),
                if in_rotation { "may still be running" } else { "are cordoned and take no traffic" }
            ),
            left,
        )),
    }
}
