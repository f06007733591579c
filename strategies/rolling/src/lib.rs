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

use cutover_sdk::rollout::{RollPlan, by_group, roll_groups};
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::types::{ParamKind, ParamSpec, ParamValue};
use cutover_sdk::{DeployPlan, Error, Guest, StrategyInfo, list_machines, traffic};

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

        let roll = RollPlan {
            release: &plan.target,
            max_unavailable: &plan.max_unavailable,
            can_cordon,
            wait_timeout_ms: plan.wait_timeout_ms,
            rollback,
            previous: plan.previous.as_ref(),
            label: "",
        };
        let moved = roll_groups(retries, &groups, &roll)?;
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

cutover_sdk::export!(Rolling);
