//! flyctl's rolling update: `updateUsingRollingStrategy` and `updateEntriesGroup`
//! (`internal/command/deploy/machines_deploymachinesapp.go`).
//!
//! The machines (sorted by id, one process group here) are updated one at a time first: the spearhead
//! (`if idx == 0 { updateFunc(parentCtx) }`), each update being `updateMachine` (in place, no cordon) then
//! `waitForMachine` (wait for `started`, then for the checks). Once the spearhead passed, the others go
//! through a pool of `getPoolSize` goroutines: `ceil(n × max_unavailable)` (or the count), bounded here by
//! flyctl's `--max-concurrent` (the limit `updateMachines`' errgroup takes, `plan.go`) unless it is 0.
//!
//! A goroutine takes the next machine as soon as its own is healthy; a strategy's calls block, so here the
//! pool moves in waves of its size, each waiting for its slowest machine. That makes this baseline slower
//! than flyctl by about the gap between a wave's slowest machine and an average one.

use crate::cutover::strategy::runtime;
use crate::cutover::strategy::types::MaxUnavailable;
use crate::{Baseline, DeployPlan, Error, update_and_wait};

/// `getPoolSize`: the pool of a group of `n` machines.
fn pool_size(plan: &DeployPlan, n: usize, max_concurrent: usize) -> usize {
    let size = match plan.max_unavailable {
        MaxUnavailable::Count(c) => c as usize,
        MaxUnavailable::Fraction(f) => (n as f64 * f).ceil() as usize,
    }
    .max(1);
    if max_concurrent == 0 { size } else { size.min(max_concurrent) }
}

/// Update `ids` as flyctl's rolling strategy does; the first error stops the deploy (`WithCancelOnError`),
/// with no rollback (the machines updated stay on the new release).
pub(crate) fn deploy(plan: &DeployPlan, ids: &[String], baseline: &Baseline) -> Result<(), Error> {
    let Some((spearhead, rest)) = ids.split_first() else { return Ok(()) };
    runtime::phase("spearhead");
    update_and_wait(std::slice::from_ref(spearhead), plan, baseline)?;
    runtime::phase("pool");
    let pool = pool_size(plan, ids.len(), baseline.max_concurrent);
    let mut done = 1;
    for wave in rest.chunks(pool) {
        update_and_wait(wave, plan, baseline)?;
        done += wave.len();
        runtime::progress(done as u32, ids.len() as u32);
    }
    Ok(())
}
