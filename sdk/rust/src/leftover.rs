//! Clean-up past the point of no return. Once the new release took the traffic (green switched in,
//! the last batch passed), what is left — stopping and destroying the old machines, removing canaries
//! — is idempotent clean-up: retried for the whole budget, and when the platform stays down even past
//! it, the deploy still succeeds. The machines left are *leftovers*: each is tagged in its metadata
//! with what is left to do and by which deploy, so that they can be found and finished later by their
//! tag, as flyctl cleans up the zombie blue machines of an earlier deploy.

use crate::retry::Retry;
use crate::runtime::{self, Level};
use crate::types::{Machine, MachineError};
use crate::{DeployPlan, describe_error, machines};

/// The metadata key that marks a leftover. Its value is what is left to do ([`Todo::as_str`]), then
/// ` by v<version>`, the release of the deploy that left it.
pub const LEFTOVER_KEY: &str = "cutover_leftover";

/// What is left to do to a leftover machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Todo {
    /// Stop it, then destroy it (an old machine that could not be stopped).
    StopAndDestroy,
    /// Destroy it (stopped already, or a removed canary).
    Destroy,
    /// Stop it (a new machine standing in for one that was stopped before the deploy).
    Stop,
}

impl Todo {
    /// The word the metadata and `cutover status` use: `stop-destroy`, `destroy`, `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StopAndDestroy => "stop-destroy",
            Self::Destroy => "destroy",
            Self::Stop => "stop",
        }
    }
}

/// Record `failures` as leftovers of this deploy: tag each machine and log what is left, then go on.
/// Returns a sentence for the deploy's log, naming the machines and what is left to do.
///
/// Tagging is idempotent (the same key, the same value), so it is retried like the clean-up itself: by
/// `policy`'s time budget, not by count. A tag given up after a few 503s was a machine left behind
/// that nothing could find again (`cutover resume` and the next deploy find leftovers by their tag).
/// The machines are tagged as one batch under one budget, so a metadata API that is down too costs one
/// budget, not one per machine. The host records each tagging call, made or failed, with the release,
/// so a machine whose tag the platform refused to the end is still listed and finished from the record.
pub fn leave(policy: Retry, plan: &DeployPlan, failures: &[MachineError], todo: Todo, what: &str) -> String {
    let value = format!("{} by v{}", todo.as_str(), plan.target.version);
    let ids: Vec<String> = failures.iter().map(|f| f.id.clone()).collect();
    let untagged = set_tag(policy, &ids, &value).len();
    let first = failures.first().map(|f| format!(" (machine {}: {})", f.id, describe_error(&f.error)));
    let note = format!(
        "{} {what} left to {}: {}{}; v{} is serving. They are tagged {LEFTOVER_KEY}={value:?}{}",
        ids.len(),
        todo.as_str().replace('-', " and "),
        ids.join(", "),
        first.unwrap_or_default(),
        plan.target.version,
        if untagged > 0 { format!(" (tagging failed for {untagged})") } else { String::new() }
    );
    runtime::log(Level::Warn, &format!("leftovers: {note}"));
    note
}

/// Tag `ids` as leftovers with what is left to do, by the deploy to `version`, without the log line
/// [`leave`] writes: for machines left by a deploy that gives up (green or canaries it could not
/// remove), whose error already says so. Retried by `policy`'s budget as one batch; returns the
/// machines left untagged.
pub fn tag(policy: Retry, ids: &[String], todo: Todo, version: u64) -> Vec<MachineError> {
    set_tag(policy, ids, &format!("{} by v{version}", todo.as_str()))
}

/// Set [`LEFTOVER_KEY`] to `value` on every machine of `ids` (an empty value clears it), retrying
/// transient errors as one batch for as long as `policy` allows. Returns the machines left untagged.
fn set_tag(policy: Retry, ids: &[String], value: &str) -> Vec<MachineError> {
    let set_each = |ids: &[String]| -> Result<(), Vec<MachineError>> {
        let failed: Vec<MachineError> = ids
            .iter()
            .filter_map(|id| {
                machines::set_metadata(id, LEFTOVER_KEY, value)
                    .err()
                    .map(|error| MachineError { id: id.clone(), error })
            })
            .collect();
        if failed.is_empty() { Ok(()) } else { Err(failed) }
    };
    crate::with_retries(policy, ids, set_each).err().unwrap_or_default()
}

/// What is left to do to `m`, when an earlier deploy tagged it as a leftover.
pub fn todo_of(m: &Machine) -> Option<Todo> {
    let value = m.metadata.iter().find(|(k, _)| k == LEFTOVER_KEY).map(|(_, v)| v.as_str())?;
    match value.split_whitespace().next()? {
        "stop-destroy" => Some(Todo::StopAndDestroy),
        "destroy" => Some(Todo::Destroy),
        "stop" => Some(Todo::Stop),
        _ => None,
    }
}

/// Finish the leftovers earlier deploys tagged in `fleet` (as listed), and return the fleet without the
/// ones that are gone or still to finish: a leftover is neither blue to clone nor a machine to move.
/// Machines to stop are stopped and untagged (an empty value) and stay in the fleet; machines to
/// destroy are stopped if need be and destroyed. What fails stays tagged for the next try.
pub fn finish_earlier(policy: Retry, plan: &DeployPlan, fleet: Vec<Machine>) -> Vec<Machine> {
    let (left, mut rest): (Vec<Machine>, Vec<Machine>) =
        fleet.into_iter().partition(|m| todo_of(m).is_some());
    if left.is_empty() {
        return rest;
    }
    runtime::log(
        Level::Info,
        &format!("finishing {} leftover machine(s) of earlier deploys (tagged {LEFTOVER_KEY})", left.len()),
    );
    let ids_with = |todo: &[Todo]| -> Vec<String> {
        left.iter().filter(|m| todo_of(m).is_some_and(|t| todo.contains(&t))).map(|m| m.id.clone()).collect()
    };
    let to_stop = ids_with(&[Todo::Stop, Todo::StopAndDestroy]);
    let stopped = match crate::stop_machines(policy, &to_stop, plan) {
        Ok(()) => to_stop.clone(),
        Err(failures) => crate::fleet::not_failed(&to_stop, &failures),
    };
    let to_destroy: Vec<String> = ids_with(&[Todo::Destroy])
        .into_iter()
        .chain(ids_with(&[Todo::StopAndDestroy]).into_iter().filter(|id| stopped.contains(id)))
        .collect();
    let failed = crate::with_retries(policy, &to_destroy, machines::destroy).err().unwrap_or_default();
    // Untagging is idempotent too: retried by the budget, as one batch.
    let to_untag: Vec<String> = left
        .iter()
        .filter(|m| todo_of(m) == Some(Todo::Stop) && stopped.contains(&m.id))
        .map(|m| m.id.clone())
        .collect();
    let still_tagged = set_tag(policy, &to_untag, "");
    rest.extend(
        left.iter()
            .filter(|m| to_untag.contains(&m.id) && !still_tagged.iter().any(|f| f.id == m.id))
            .cloned(),
    );
    let finished = to_destroy.len() - failed.len();
    runtime::log(
        Level::Info,
        &format!(
            "destroyed {finished} leftover machine(s) of earlier deploys; {} still tagged",
            failed.len()
        ),
    );
    rest
}
