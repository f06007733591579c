//! flyctl's bluegreen deploy: `blueGreen.Deploy` (`internal/command/deploy/strategy_bluegreen.go`).
//!
//! Green machines are launched (`CreateGreenMachines`, `SkipServiceRegistration`: out of rotation),
//! then flyctl sleeps 300 ms, waits for every green machine to start (`WaitForGreenMachinesToBeStarted`)
//! and pass its checks (`WaitForGreenMachinesToBeHealthy`), uncordons them
//! (`MarkGreenMachinesAsReadyForTraffic`), waits `waitBeforeCordon` (10 s, "to let fly-proxy see the new
//! machines"), cordons blue (`CordonBlueMachines`), waits `waitBeforeStop` (10 s, "to let fly-proxy
//! forget about the old machines"), stops blue, waits for it to stop, and destroys it. On an error before
//! green is in rotation, `Rollback` destroys the green machines one by one.
//!
//! How close each step is to flyctl's (its pools, its polling of the checks) is the crate's
//! [`Baseline`].
//!
//! `TagBlueMachinesAsSafeForDeletion` (metadata on every blue machine, for a later manual clean-up) is
//! left out: it is one call per machine, which a strategy could only make one after another, slower than
//! flyctl's pool of 8, and cutover's journal keeps what it is for.

use crate::cutover::strategy::machines::{Step, StopSpec};
use crate::cutover::strategy::types::MachineState;
use crate::cutover::strategy::{machines, runtime};
use crate::{Baseline, DeployPlan, Error, first};

/// `initialize`: `bg.waitBeforeStop = 10 * time.Second`, `bg.waitBeforeCordon = 10 * time.Second`.
const WAIT_BEFORE_CORDON_MS: u64 = 10_000;
const WAIT_BEFORE_STOP_MS: u64 = 10_000;
/// `Deploy`: "because computers are too fast and everyone deserves a break sometimes".
const BREAK_MS: u64 = 300;

pub(crate) fn deploy(plan: &DeployPlan, blue: &[String], baseline: &Baseline) -> Result<(), Error> {
    runtime::phase("create green");
    let mut green = Vec::with_capacity(blue.len());
    let mut failed = None;
    for result in machines::clone_from(blue, &plan.target, false) {
        match result {
            Ok(id) => green.push(id),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return rollback(&green, e);
    }
    runtime::sleep(BREAK_MS);
    runtime::phase("wait green");
    if let Err(e) = machines::wait_state(&green, MachineState::Started, plan.wait_timeout_ms) {
        return rollback(&green, first(e));
    }
    // `WaitForGreenMachinesToBeHealthy`: `time.Sleep(gracePeriod)`, then a `Get` and
    // `time.Sleep(interval)` until the checks pass, per machine (`GetMinIntervalAndMinGracePeriod`).
    if let Err(e) =
        baseline.wait_healthy(&green, baseline.grace_ms, baseline.interval_ms, plan.wait_timeout_ms)
    {
        return rollback(&green, e);
    }
    if let Err(e) = baseline.pool(&green, Step::Uncordon) {
        return rollback(&green, e);
    }
    // From here a rollback never deletes green machines (`canDeleteGreenMachines = false`).
    runtime::phase("wait before cordon");
    runtime::sleep(WAIT_BEFORE_CORDON_MS);
    // A failed cordon is "not a critical error": flyctl prints it and goes on.
    let _ = baseline.pool(blue, Step::Cordon);
    runtime::phase("wait before stop");
    runtime::sleep(WAIT_BEFORE_STOP_MS);
    runtime::phase("retire blue");
    // Failed stops are not critical either: the machines are destroyed with force next.
    let stop = StopSpec { signal: plan.kill_signal.clone(), timeout_ms: plan.kill_timeout_ms };
    let _ = baseline.pool(blue, Step::Stop(stop));
    let _ = machines::wait_state(blue, MachineState::Stopped, plan.wait_timeout_ms);
    baseline.pool(blue, Step::Destroy)
}

/// `Rollback`: the green machines are destroyed one at a time (`for _, mach := range
/// bg.greenMachines.machines() { mach.Destroy(ctx, true) }`), then the deploy's error is returned.
fn rollback(green: &[String], error: Error) -> Result<(), Error> {
    runtime::phase("rollback");
    for id in green {
        machines::destroy(std::slice::from_ref(id)).map_err(first)?;
    }
    Err(error)
}
