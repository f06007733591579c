//! flyctl's deploy algorithms as a `cutover:strategy@0.2.0` component: the baseline the built-ins are
//! benchmarked against (`cargo bench -p cutover --bench flyctl`). Never built into the binary.
//!
//! Read from superfly/flyctl `internal/command/deploy/` and written with the host calls that do what
//! flyctl's Machines API calls do. Parameter `algorithm` picks one: `rolling`, `bluegreen`, `canary`.
//!
//! The contract's calls block, so a strategy cannot run flyctl's goroutine pools as they are. Where
//! flyctl runs a pool of at most `max-concurrent` (8) goroutines over machines doing one API call each
//! (create, uncordon, cordon, stop, destroy), this strategy makes one batch call, which the host fans out
//! 64 at a time: never slower than flyctl's pool, so the baseline is flyctl at its best. Where flyctl polls
//! (`WaitForHealthchecksToPass` sleeps the grace period, then polls every check interval), the host's
//! `wait-healthy` returns when the checks pass: again never slower. The one place the blocking calls
//! make it slower than flyctl is the rolling pool, whose goroutines each update one machine and wait for
//! it; here the pool moves in waves (see `rolling`).
wit_bindgen::generate!({ path: "../../../wit/v0.2", world: "strategy" });

mod bluegreen;
mod rolling;

use cutover::strategy::types::{MachineError, ParamKind, ParamSpec, ParamValue};
use cutover::strategy::{health, machines, runtime};

/// flyctl's `--max-concurrent` default: the bound of its per-machine goroutine pools.
const MAX_CONCURRENT: i64 = 8;

struct Flyctl;

/// The first error of a batch call, as flyctl's pools return their first error (`WithFirstError`).
fn first(errors: Vec<MachineError>) -> Error {
    errors.into_iter().next().map_or(Error::Platform("batch failed".into()), |e| e.error)
}

fn param<'a>(plan: &'a DeployPlan, name: &str) -> Option<&'a ParamValue> {
    plan.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// One machine's update and wait as flyctl's `updateMachine` + `waitForMachine`
/// (`machines_deploymachinesapp.go`): update in place, wait for `started`, wait for the checks.
pub(crate) fn update_and_wait(ids: &[String], plan: &DeployPlan) -> Result<(), Error> {
    machines::update(ids, &plan.target).map_err(first)?;
    machines::wait_state(ids, cutover::strategy::types::MachineState::Started, plan.wait_timeout_ms)
        .map_err(first)?;
    health::wait_healthy(ids, plan.wait_timeout_ms).map_err(first)
}

impl Guest for Flyctl {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "flyctl".into(),
            summary: "benchmark baseline: flyctl's rolling, bluegreen and canary algorithms".into(),
            params: vec![
                ParamSpec {
                    name: "algorithm".into(),
                    kind: ParamKind::Text,
                    default: Some(ParamValue::Text("rolling".into())),
                    summary: "rolling, bluegreen or canary".into(),
                },
                ParamSpec {
                    name: "max_concurrent".into(),
                    kind: ParamKind::Integer,
                    default: Some(ParamValue::Integer(MAX_CONCURRENT)),
                    summary: "flyctl's --max-concurrent; 0 leaves the rolling pool at max_unavailable".into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let algorithm = match param(&plan, "algorithm") {
            Some(ParamValue::Text(s)) => s.clone(),
            _ => "rolling".into(),
        };
        let max_concurrent = match param(&plan, "max_concurrent") {
            Some(ParamValue::Integer(n)) => (*n).max(0) as usize,
            _ => MAX_CONCURRENT as usize,
        };
        let mut fleet = machines::list()?;
        // `updateUsingRollingStrategy` sorts the entries by machine id before anything else.
        fleet.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<String> = fleet.into_iter().map(|m| m.id).collect();
        match algorithm.as_str() {
            "rolling" => rolling::deploy(&plan, &ids, max_concurrent),
            "bluegreen" => bluegreen::deploy(&plan, &ids),
            "canary" => {
                canary(&plan, &ids)?;
                rolling::deploy(&plan, &ids, max_concurrent)
            }
            other => {
                Err(Error::Invalid(format!("algorithm `{other}`: expected rolling, bluegreen or canary")))
            }
        }
    }
}

/// `deployCanaryMachines` (`machines_deploymachinesapp.go`): per process group one throwaway machine on
/// the new release (`spawnMachineInGroup`: launch, wait `started`, wait for its checks), destroyed once it
/// passed; then the rolling update of every machine (`updateExistingMachines`: "canary" falls through to
/// rolling). The canary is destroyed only when it passed (`defer … if err == nil`): a failing canary is
/// left running, as flyctl leaves it.
fn canary(plan: &DeployPlan, ids: &[String]) -> Result<(), Error> {
    let Some(source) = ids.first() else { return Ok(()) };
    runtime::phase("canary");
    // Launched with the group's services (only its DNS registration is skipped), so the proxy routes to it.
    let canary = machines::clone_from(std::slice::from_ref(source), &plan.target, true).remove(0)?;
    let one = [canary];
    machines::wait_state(&one, cutover::strategy::types::MachineState::Started, plan.wait_timeout_ms)
        .map_err(first)?;
    health::wait_healthy(&one, plan.wait_timeout_ms).map_err(first)?;
    machines::destroy(&one).map_err(first)
}

export!(Flyctl);
