//! flyctl's deploy algorithms as a `cutover:strategy@0.2.0` component: the baseline the built-ins are
//! benchmarked against (`cargo bench -p cutover --bench flyctl`). Never built into the binary.
//!
//! Read from superfly/flyctl `internal/command/deploy/` and written with the host calls that do what
//! flyctl's Machines API calls do. Parameter `algorithm` picks one: `rolling`, `bluegreen`, `canary`.
//!
//! Parameter `baseline` says how close to flyctl it runs:
//!
//! - `as-written` (the default): flyctl's waits and pools as its source has them. Its checks are
//!   polled: bluegreen's `WaitForGreenMachinesToBeHealthy` sleeps the check's grace period, then looks
//!   every check interval (params `check_grace_ms`, `check_interval_ms`: flyctl reads them from the
//!   machine config, which the contract's machine record does not carry); rolling's and the canary's
//!   `WaitForHealthchecksToPass` looks at once, then with a backoff of 1 to 2 s, taken here at its
//!   floor, 1 s. Either waits for passing checks until `wait_timeout`, failing ones included. Each
//!   look is free here (flyctl's costs a `Get`). Bluegreen's pools of `max-concurrent` goroutines, one
//!   API call per machine (uncordon, cordon, stop, destroy), are pipelines of one step with a window
//!   of `max_concurrent`: a pool. Its create pool (`min(ceil(n / 3), max-concurrent)`) cannot be one
//!   (a pipeline has no create step): it is one batch call, which the host fans out 64 at a time.
//! - `at-its-best`: every pool is one batch call and every wait for checks is the host's
//!   `wait-healthy`, which returns the instant they pass (or once they have failed three times): never
//!   slower than flyctl, a bound on how fast flyctl's steps could ever be.
//!
//! The one place the blocking calls make it slower than flyctl in either mode is the rolling pool,
//! whose goroutines each update one machine and wait for it; here the pool moves in waves (see
//! `rolling`).
wit_bindgen::generate!({ path: "../../../wit/v0.2", world: "strategy" });

mod bluegreen;
mod rolling;

use cutover::strategy::types::{MachineError, ParamKind, ParamSpec, ParamValue};
use cutover::strategy::{health, machines, runtime, traffic};

/// flyctl's `--max-concurrent` default: the bound of its per-machine goroutine pools.
const MAX_CONCURRENT: i64 = 8;
/// `WaitForHealthchecksToPass`: `backoff.Backoff{Min: 1 * time.Second, Max: 2 * time.Second, Jitter:
/// true}`, at its floor.
const HEALTH_BACKOFF_MS: u64 = 1_000;

/// How the run follows flyctl (parameter `baseline` and the checks' timings).
#[derive(Clone, Copy)]
pub(crate) struct Baseline {
    /// `as-written`: checks polled and pools bounded as flyctl's; else flyctl at its best.
    pub(crate) as_written: bool,
    /// flyctl's `--max-concurrent`; 0 for no bound.
    pub(crate) max_concurrent: usize,
    /// The app's check grace period and interval, in ms.
    pub(crate) grace_ms: u64,
    pub(crate) interval_ms: u64,
}

impl Baseline {
    fn of(plan: &DeployPlan) -> Result<Self, Error> {
        let as_written = match param(plan, "baseline") {
            Some(ParamValue::Text(s)) if s == "as-written" => true,
            Some(ParamValue::Text(s)) if s == "at-its-best" => false,
            None => true,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "baseline `{other:?}`: expected as-written or at-its-best"
                )));
            }
        };
        let ms = |name: &str, default: i64| match param(plan, name) {
            Some(ParamValue::Integer(n)) => (*n).max(0) as u64,
            _ => default as u64,
        };
        Ok(Baseline {
            as_written,
            max_concurrent: ms("max_concurrent", MAX_CONCURRENT) as usize,
            grace_ms: ms("check_grace_ms", DEFAULT_GRACE_MS),
            interval_ms: ms("check_interval_ms", DEFAULT_INTERVAL_MS),
        })
    }

    /// A pool of `max-concurrent` goroutines making `step` on each machine: a pipeline with that window
    /// as written, one batch call at its best.
    pub(crate) fn pool(&self, ids: &[String], step: machines::Step) -> Result<(), Error> {
        if !self.as_written {
            let batch = match step {
                machines::Step::Cordon => traffic::cordon(ids),
                machines::Step::Uncordon => traffic::uncordon(ids),
                machines::Step::Stop(s) => machines::stop(ids, &s.signal, s.timeout_ms),
                machines::Step::Destroy => machines::destroy(ids),
                _ => unreachable!("a pool makes one API call per machine"),
            };
            return batch.map_err(first);
        }
        let window = u32::try_from(self.max_concurrent).unwrap_or(u32::MAX);
        let options = machines::PipelineOptions { window, stop_on_failure: false };
        machines::pipeline(ids, &[step], options).map_err(|f| {
            f.failed.into_iter().next().map_or(Error::Platform("pool failed".into()), |e| e.error)
        })
    }

    /// Wait for every machine of `ids` to pass its checks: flyctl's polling as written (the first look
    /// after `first_ms`, then every `every_ms`, failing checks waited on until `timeout_ms`), or the
    /// host's `wait-healthy` at its best.
    pub(crate) fn wait_healthy(
        &self,
        ids: &[String],
        first_ms: u64,
        every_ms: u64,
        timeout_ms: u64,
    ) -> Result<(), Error> {
        if !self.as_written {
            return health::wait_healthy(ids, timeout_ms).map_err(first);
        }
        let start = runtime::now();
        runtime::sleep(first_ms);
        let mut pending = ids.to_vec();
        loop {
            // A look: which machines pass right now (a wait that ends at once). Checks not passing yet
            // and failing ones are looked at again; anything else is the `Get` failing, which ends
            // flyctl's wait.
            let Err(errors) = health::wait_healthy(&pending, 0) else { return Ok(()) };
            pending.clear();
            for e in errors {
                match e.error {
                    Error::Timeout(_) | Error::Unhealthy(_) => pending.push(e.id),
                    other => return Err(other),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            let waited = runtime::now().saturating_sub(start);
            if waited >= timeout_ms {
                return Err(Error::Timeout(format!(
                    "timeout reached waiting for health checks to pass for machine {}",
                    pending[0]
                )));
            }
            runtime::sleep(every_ms.min(timeout_ms - waited));
        }
    }
}

/// The example app's check (grace 5 s, interval 10 s), when the bench does not say.
const DEFAULT_GRACE_MS: i64 = 5_000;
const DEFAULT_INTERVAL_MS: i64 = 10_000;

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
pub(crate) fn update_and_wait(ids: &[String], plan: &DeployPlan, baseline: &Baseline) -> Result<(), Error> {
    machines::update(ids, &plan.target).map_err(first)?;
    machines::wait_state(ids, cutover::strategy::types::MachineState::Started, plan.wait_timeout_ms)
        .map_err(first)?;
    baseline.wait_healthy(ids, 0, HEALTH_BACKOFF_MS, plan.wait_timeout_ms)
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
                    name: "baseline".into(),
                    kind: ParamKind::Text,
                    default: Some(ParamValue::Text("as-written".into())),
                    summary:
                        "as-written (flyctl's polls and pools) or at-its-best (instant waits, batch calls)"
                            .into(),
                },
                ParamSpec {
                    name: "check_grace_ms".into(),
                    kind: ParamKind::Integer,
                    default: Some(ParamValue::Integer(DEFAULT_GRACE_MS)),
                    summary: "the app's check grace period: bluegreen's first look at the checks".into(),
                },
                ParamSpec {
                    name: "check_interval_ms".into(),
                    kind: ParamKind::Integer,
                    default: Some(ParamValue::Integer(DEFAULT_INTERVAL_MS)),
                    summary: "the app's check interval: how often bluegreen looks at the checks".into(),
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
        let baseline = Baseline::of(&plan)?;
        let mut fleet = machines::list()?;
        // `updateUsingRollingStrategy` sorts the entries by machine id before anything else.
        fleet.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<String> = fleet.into_iter().map(|m| m.id).collect();
        match algorithm.as_str() {
            "rolling" => rolling::deploy(&plan, &ids, &baseline),
            "bluegreen" => bluegreen::deploy(&plan, &ids, &baseline),
            "canary" => {
                canary(&plan, &ids, &baseline)?;
                rolling::deploy(&plan, &ids, &baseline)
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
fn canary(plan: &DeployPlan, ids: &[String], baseline: &Baseline) -> Result<(), Error> {
    let Some(source) = ids.first() else { return Ok(()) };
    runtime::phase("canary");
    // Launched with the group's services (only its DNS registration is skipped), so the proxy routes to it.
    let canary = machines::clone_from(std::slice::from_ref(source), &plan.target, true).remove(0)?;
    let one = [canary];
    machines::wait_state(&one, cutover::strategy::types::MachineState::Started, plan.wait_timeout_ms)
        .map_err(first)?;
    baseline.wait_healthy(&one, 0, HEALTH_BACKOFF_MS, plan.wait_timeout_ms)?;
    machines::destroy(&one).map_err(first)
}

export!(Flyctl);
