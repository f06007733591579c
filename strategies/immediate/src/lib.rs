//! The immediate strategy: update every machine at once.
//!
//! Every machine not yet on the target release is updated in one `machines.update` call, which the host
//! fans out (bounded by its `concurrency`). Nothing is cordoned and nothing is waited on: the deploy is
//! done as soon as the platform has accepted every update, while the machines are still restarting. So
//! the whole app drops traffic until the new release is up, and a release that fails its checks takes
//! the whole app down with it. That is the point: it is the fastest way to move a fleet, for apps that
//! can afford the gap (staging, batch workers), and the control case the zero-downtime strategies are
//! measured against.
//!
//! Machines that were stopped before the deploy are updated but stay stopped (the host's update does
//! that, as flyctl does). Machines already on the target release are skipped, so running the same
//! deploy again finishes a partial one.

use cutover_sdk::runtime::{self, Level};
use cutover_sdk::{DeployPlan, Error, Guest, StrategyInfo, machines};
use cutover_sdk::{explain, list_machines, should_run, with_retries};

struct Immediate;

impl Guest for Immediate {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "immediate".into(),
            summary: "Update every machine at once: no cordon, no health waits. Fastest, and drops \
                      traffic while the machines restart."
                .into(),
            params: vec![cutover_sdk::retries_param()],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let retries = cutover_sdk::Retry::for_plan(&plan);
        // Leftovers of earlier deploys are finished first, and are not machines to move.
        let fleet = cutover_sdk::leftover::finish_earlier(retries, &plan, list_machines(retries)?);

        let pending: Vec<_> = fleet.iter().filter(|m| m.release.version != plan.target.version).collect();
        if pending.is_empty() {
            runtime::log(
                Level::Info,
                &format!("all {} machine(s) already on v{}", fleet.len(), plan.target.version),
            );
            return Ok(());
        }
        let ids: Vec<String> = pending.iter().map(|m| m.id.clone()).collect();
        let stopped = pending.iter().filter(|m| !should_run(m.state)).count();
        runtime::log(
            Level::Info,
            &format!(
                "updating {} machine(s) to v{} ({}) at once, without cordon or health checks; {stopped} \
                 of them stopped, which stay stopped",
                ids.len(),
                plan.target.version,
                plan.target.image
            ),
        );

        runtime::phase("update all");
        runtime::progress(0, ids.len() as u32);
        // One call for the whole fleet: the host fans it out, which is what makes this strategy fast.
        with_retries(retries, &ids, |ids| machines::update(ids, &plan.target)).map_err(|failures| {
            let failed = failures.len();
            explain(
                failures,
                &format!(
                    "updating {} machine(s) to v{} failed for {failed}; the other {} accepted the update and \
                     are restarting on v{}, the {failed} that failed may still be on their previous release",
                    ids.len(),
                    plan.target.version,
                    ids.len() - failed,
                    plan.target.version
                ),
            )
        })?;
        runtime::progress(ids.len() as u32, ids.len() as u32);
        runtime::log(
            Level::Info,
            &format!(
                "updated {} machine(s) to v{}; not waiting for them to start or pass their checks",
                ids.len(),
                plan.target.version
            ),
        );
        Ok(())
    }
}

cutover_sdk::export!(Immediate);
