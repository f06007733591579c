//! The rolling strategy: replace machines in place, a batch at a time.
//!
//! Per process group, machines not yet on the target release are taken in batches of `max_unavailable`
//! (a count, or a fraction of the group rounded up; Fly's default is 0.33). Each batch is cordoned,
//! updated, waited on until started and then until passing, and uncordoned. The first failure stops the
//! roll: machines of later batches are never touched, so they keep serving the previous release.
//!
//! Machines that were stopped before the deploy are updated but stay stopped, as flyctl does. Machines
//! already on the target release are skipped, so running the same deploy again finishes a partial one.
//!
//! With `rollback` (the default), a failed batch is not left half-way: every machine this deploy moved
//! (the completed batches and the failed one) goes back to the previous release, a batch at a time with
//! the same discipline, and the deploy then fails with the original error. The failed batch goes first,
//! because it is the one out of service; completed batches follow in reverse, each one serving until its
//! turn, so a rollback never takes more than `max_unavailable` out of service either. A stopped
//! machine goes back stopped. A rollback that fails stops where it failed, like a roll does: the
//! error then says how far it got. Without `rollback`, the fleet stays split between the releases, which
//! is what an operator who wants to look at the failed machines asks for.
//!
//! Either way, a batch that stops a roll or a rollback keeps only its failed machines out of rotation:
//! the others are waited on until they serve and uncordoned (`cutover_sdk::rollout::put_back_passing`), so one
//! machine that crashed does not keep its healthy batch-mates out of service after the deploy.

use cutover_sdk::rollout::{Batch, by_group, move_batch, plan_batches, put_back_passing, roll_back};
use cutover_sdk::runtime::{self, Level};
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
            summary: "Replace machines in place, max_unavailable at a time: cordon, update, wait \
                      started, wait healthy, uncordon. Stops at the first failure and, with `rollback`, \
                      moves what it moved back to the previous release."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
                ParamSpec {
                    name: "rollback".into(),
                    kind: ParamKind::Boolean,
                    default: Some(ParamValue::Boolean(DEFAULT_ROLLBACK)),
                    summary: "On a failed batch, move every machine this deploy moved back to the \
                              previous release (same batches, same checks) before failing."
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
        // Every batch that reached the new release, in order: what a rollback has to undo.
        let mut done: Vec<Batch> = Vec::new();
        for (step, batch) in plan_batches(&groups, plan.target.version, &plan.max_unavailable) {
            runtime::phase(&step);
            if let Err(failures) = move_batch(retries, can_cordon, &batch, &plan.target, plan.wait_timeout_ms)
            {
                let failed: Vec<String> = failures.iter().map(|f| f.id.clone()).collect();
                let untouched = to_move - moved - batch.machines.len();
                let error = explain(
                    failures,
                    &format!(
                        "{} failed ({} machine(s) in it); {moved} machine(s) already on v{}, {untouched} \
                         untouched and still on the previous release",
                        batch.label,
                        batch.machines.len(),
                        plan.target.version
                    ),
                );
                // Without a rollback, the batch's machines that did come up go back in rotation.
                let kept = |error: Error, why: &str| {
                    let back = put_back_passing(retries, can_cordon, &batch, &failed, plan.wait_timeout_ms);
                    with_note(
                        error,
                        &format!("{why}{back} of that batch pass their checks and are back in rotation"),
                    )
                };
                return Err(match (rollback, &plan.previous) {
                    (false, _) => kept(error, "; rollback is off: "),
                    (true, None) => kept(error, "; no previous release to roll back to: "),
                    (true, Some(previous)) => {
                        // The failed batch first (it is out of service), then the others in reverse.
                        done.push(batch);
                        done.reverse();
                        let note =
                            roll_back(retries, can_cordon, &done, previous, plan.wait_timeout_ms, &mut ());
                        with_note(error, &note)
                    }
                });
            }
            moved += batch.machines.len();
            done.push(batch);
            runtime::progress(moved as u32, to_move as u32);
        }
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

cutover_sdk::export!(Rolling);
