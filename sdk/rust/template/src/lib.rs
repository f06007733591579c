//! {{name}}: a cutover deploy strategy.
//!
//! One machine at a time: cordon it (no new connections), move it to the new release, wait until it is
//! started and passes its health checks, put it back in rotation. The health checks are the gate: the
//! first machine that does not pass stops the deploy, so at most one machine is ever out of service
//! and a broken release reaches one machine only. With `restore` (the default), that machine is moved
//! back to the previous release so the whole fleet serves again; the machines already moved passed
//! their checks and stay on the new release.
//!
//! Machines that were stopped are updated and stay stopped. Machines already on the target release are
//! skipped, so running the same deploy again finishes a partial one.

use cutover_sdk::prelude::*;
use cutover_sdk::{NotServing, log};

struct Strategy;

/// Whether a machine that failed its checks goes back to the previous release, by default.
const DEFAULT_RESTORE: bool = true;

/// How long to wait between machines, by default: none.
const DEFAULT_PAUSE_MS: u64 = 0;

impl Guest for Strategy {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "{{name}}".into(),
            summary: "One machine at a time: cordon, update, wait healthy, uncordon; stops at the first \
                      machine that fails its checks."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
                params::boolean(
                    "restore",
                    DEFAULT_RESTORE,
                    "Move a machine that failed its checks back to the previous release.",
                ),
                params::duration("pause", DEFAULT_PAUSE_MS, "How long to wait between two machines."),
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        // Idempotent calls are retried for as long as wait_timeout allows.
        let retries = cutover_sdk::Retry::for_plan(&plan);
        let restore = params::get_bool("restore", DEFAULT_RESTORE);
        let pause_ms = params::get_duration_ms("pause", DEFAULT_PAUSE_MS);
        let can_cordon = traffic::capabilities().cordon;

        let fleet = cutover_sdk::list_machines(retries)?;
        let pending: Vec<Machine> =
            fleet.into_iter().filter(|m| m.release.version != plan.target.version).collect();
        info!("moving {} machine(s) to v{} one at a time", pending.len(), plan.target.version);

        for (i, machine) in pending.iter().enumerate() {
            log::phase(&format!("machine {}/{}", i + 1, pending.len()));
            if let Err(failures) = move_one(retries, can_cordon, machine, &plan.target, plan.wait_timeout_ms)
            {
                let error = cutover_sdk::explain(
                    failures,
                    &format!("machine {} of {} failed on v{}", i + 1, pending.len(), plan.target.version),
                );
                let note = match (&plan.previous, restore) {
                    (Some(previous), true) => {
                        warn!("moving {} back to v{}", machine.id, previous.version);
                        match move_one(retries, can_cordon, machine, previous, plan.wait_timeout_ms) {
                            Ok(()) => {
                                format!("; {} is back on v{} and serving", machine.id, previous.version)
                            }
                            Err(_) => {
                                format!("; moving {} back to v{} failed too", machine.id, previous.version)
                            }
                        }
                    }
                    _ => format!("; {} is left as it is", machine.id),
                };
                return Err(cutover_sdk::with_note(error, &note));
            }
            log::progress(i + 1, pending.len());
            if pause_ms > 0 && i + 1 < pending.len() {
                runtime::sleep(pause_ms);
            }
        }
        info!("all {} machine(s) on v{}", pending.len(), plan.target.version);
        Ok(())
    }
}

/// Cordon, update, wait started and healthy, uncordon — each call retrying transient platform errors.
fn move_one(
    retries: cutover_sdk::Retry,
    can_cordon: bool,
    machine: &Machine,
    release: &Release,
    timeout_ms: u64,
) -> Result<(), Vec<MachineError>> {
    let id = [machine.id.clone()];
    if can_cordon {
        cutover_sdk::with_retries(retries, &id, traffic::cordon)?;
    }
    cutover_sdk::with_retries(retries, &id, |ids| machines::update(ids, release))?;
    // A stopped machine is updated and stays stopped: nothing to wait for.
    if cutover_sdk::should_run(machine.state) {
        cutover_sdk::wait_serving(retries, &id, timeout_ms).map_err(NotServing::failures)?;
    }
    if can_cordon {
        cutover_sdk::with_retries(retries, &id, traffic::uncordon)?;
    }
    Ok(())
}

cutover_sdk::export!(Strategy);
