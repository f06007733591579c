//! The rolling strategy: replace machines in place, at most `max_unavailable` out of service at once.
//!
//! Per process group, the machines not yet on the target release are moved with a window of
//! `max_unavailable` (a count, or a fraction of the group rounded up; Fly's default is 0.33): each is
//! cordoned, updated, waited on until started and then until passing, and uncordoned, and as soon as one
//! is back in service the next one starts, so the roll never waits for the slowest machine of a batch
//! (flyctl's rolling pool works the same way, one API call at a time). The first failure stops the roll:
//! no further machine is touched, so the ones not started keep serving the previous release, and those
//! already under way finish.
//!
//! Machines that were stopped before the deploy are updated first and stay stopped, as flyctl does.
//! Machines already on the target release are skipped, so running the same deploy again finishes a
//! partial one.
//!
//! With `rollback` (the default), a failed roll is not left half-way: every machine this deploy moved
//! goes back to the previous release, in batches of the same size with the same discipline, and the
//! deploy then fails with the original error. The failed machines go first, because they are out of
//! service; the others follow, the last moved first, each serving until its turn, so a rollback never
//! takes more than `max_unavailable` out of service either. A stopped machine goes back stopped. A
//! rollback that fails stops where it failed, like a roll does: the error then says how far it got.
//! Without `rollback`, the fleet stays split between the releases, which is what an operator who wants
//! to look at the failed machines asks for; only the failed machines are out of rotation.

use cutover_sdk::batch::batch_size;
use cutover_sdk::rollout::{Batch, Stopped, by_group, roll_back, roll_window};
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::types::Machine;
use cutover_sdk::types::{ParamKind, ParamSpec, ParamValue};
use cutover_sdk::{DeployPlan, Error, Guest, StrategyInfo, traffic};
use cutover_sdk::{explain, list_machines, with_note};

struct Rolling;

/// Whether a failed roll moves the machines it already moved back, by default.
const DEFAULT_ROLLBACK: bool = true;

impl Guest for Rolling {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "rolling".into(),
            summary: "Replace machines in place, at most max_unavailable out of service at once: \
                      cordon, update, wait started, wait healthy, uncordon, the next machine starting as \
                      soon as one is back. Stops at the first failure and, with `rollback`, moves what it \
                      moved back to the previous release."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
                ParamSpec {
                    name: "rollback".into(),
                    kind: ParamKind::Boolean,
                    default: Some(ParamValue::Boolean(DEFAULT_ROLLBACK)),
                    summary: "On a failure, move every machine this deploy moved back to the previous \
                              release (max_unavailable at a time, same checks) before failing."
                        .into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let retries = cutover_sdk::Retry::for_plan(&plan);
        let rollback = cutover_sdk::params::get_bool("rollback", DEFAULT_ROLLBACK);
        let can_cordon = traffic::capabilities().cordon;
        // Leftovers of earlier deploys are finished first, and are not machines to move.
        let fleet = cutover_sdk::leftover::finish_earlier(retries, &plan, list_machines(retries)?);

        let groups = by_group(fleet);
        let to_move: usize =
            groups.values().flatten().filter(|m| m.release.version != plan.target.version).count();
        runtime::log(
            Level::Info,
            &format!(
                "rolling {to_move} machine(s) in {} process group(s) to v{} ({})",
                groups.len(),
                plan.target.version,
                plan.target.image
            ),
        );

        let mut moved = 0usize;
        // Per process group, the machines that reached the new release and the group's window: what a
        // rollback has to undo, in the order they were moved.
        let mut done: Vec<(&str, usize, Vec<&Machine>)> = Vec::new();
        for (group, members) in &groups {
            let pending: Vec<&Machine> =
                members.iter().filter(|m| m.release.version != plan.target.version).collect();
            if pending.is_empty() {
                continue;
            }
            let window = batch_size(&plan.max_unavailable, members.len());
            runtime::phase(&format!("{group}: {} machine(s), {window} at a time", pending.len()));
            let rolled =
                roll_window(retries, can_cordon, &pending, &plan.target, window, plan.wait_timeout_ms);
            let Err(Stopped { moved: got_there, failed, .. }) = rolled else {
                moved += pending.len();
                done.push((group, window, pending));
                runtime::progress(moved as u32, to_move as u32);
                continue;
            };
            moved += got_there.len();
            let untouched = to_move - moved - failed.len();
            let failed_ids: Vec<String> = failed.iter().map(|f| f.id.clone()).collect();
            let error = explain(
                failed,
                &format!(
                    "{group}: {} of {} machine(s) failed ({window} at a time); {moved} machine(s) already on \
                     v{}, {untouched} untouched and still on the previous release",
                    failed_ids.len(),
                    pending.len(),
                    plan.target.version
                ),
            );
            done.push((group, window, got_there));
            return Err(match (rollback, &plan.previous) {
                (false, _) => with_note(error, &kept_note(&failed_ids, "; rollback is off")),
                (true, None) => {
                    with_note(error, &kept_note(&failed_ids, "; no previous release to roll back to"))
                }
                (true, Some(previous)) => {
                    let back = rollback_batches(group, window, &pending, &failed_ids, &done);
                    let note = roll_back(retries, can_cordon, &back, previous, plan.wait_timeout_ms, &mut ());
                    with_note(error, &note)
                }
            });
        }
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

/// "; rollback is off: nothing was moved back; the 2 machine(s) that failed (a, b) are left as they
/// failed", naming at most five.
fn kept_note(failed: &[String], why: &str) -> String {
    let named = match failed.len() {
        0..=5 => failed.join(", "),
        n => format!("{}, and {} more", failed[..5].join(", "), n - 5),
    };
    format!(
        "{why}: nothing was moved back; the {} machine(s) that failed ({named}) are left as they failed",
        failed.len()
    )
}

/// What a failed roll moves back, in order: the failed machines of `group` first (they are out of
/// service), then every machine moved, the last moved first, in batches of its group's window.
fn rollback_batches<'a>(
    group: &str,
    window: usize,
    pending: &[&'a Machine],
    failed: &[String],
    done: &[(&str, usize, Vec<&'a Machine>)],
) -> Vec<Batch<'a>> {
    let failed: std::collections::HashSet<&str> = failed.iter().map(String::as_str).collect();
    let failed: Vec<&Machine> = pending.iter().copied().filter(|m| failed.contains(m.id.as_str())).collect();
    let mut back = Vec::new();
    for chunk in failed.chunks(window.max(1)) {
        back.push(Batch { label: format!("{group}: the machines that failed"), machines: chunk.to_vec() });
    }
    for (group, window, moved) in done.iter().rev() {
        let last_first: Vec<&Machine> = moved.iter().rev().copied().collect();
        let batches = last_first.len().div_ceil((*window).max(1));
        for (i, chunk) in last_first.chunks((*window).max(1)).enumerate() {
            back.push(Batch {
                label: format!("{group} batch {}/{batches}", i + 1),
                machines: chunk.to_vec(),
            });
        }
    }
    back
}

cutover_sdk::export!(Rolling);
