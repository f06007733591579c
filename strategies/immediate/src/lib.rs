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

wit_bindgen::generate!({ path: "../../wit", world: "strategy" });

use cutover::strategy::machines;
use cutover::strategy::runtime::{self, Level};
// The world `use`s DeployPlan, Error and StrategyInfo, so they are already in scope at the root.
use cutover::strategy::types::{MachineError, MachineState, ParamKind, ParamSpec, ParamValue};

struct Immediate;

/// How often a batch operation is retried on transient (`platform`) errors, by default.
const DEFAULT_RETRIES: i64 = 3;

impl Guest for Immediate {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "immediate".into(),
            summary: "Update every machine at once: no cordon, no health waits. Fastest, and drops \
                      traffic while the machines restart."
                .into(),
            params: vec![ParamSpec {
                name: "retries".into(),
                kind: ParamKind::Integer,
                default: Some(ParamValue::Integer(DEFAULT_RETRIES)),
                summary: "How often a machine operation is retried after a transient platform error.".into(),
            }],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let retries = match runtime::param("retries") {
            Some(ParamValue::Integer(n)) => n.max(0) as u32,
            _ => DEFAULT_RETRIES as u32,
        };
        let fleet = list_machines(retries)?;

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

/// A machine that was meant to be serving before the deploy.
fn should_run(state: MachineState) -> bool {
    !matches!(state, MachineState::Stopped | MachineState::Suspended | MachineState::Created)
}

/// Run a batch operation, retrying only the machines whose error was transient (`platform`).
fn with_retries(
    retries: u32,
    ids: &[String],
    mut op: impl FnMut(&[String]) -> Result<(), Vec<MachineError>>,
) -> Result<(), Vec<MachineError>> {
    let mut todo = ids.to_vec();
    let mut attempt = 0;
    loop {
        if todo.is_empty() {
            return Ok(());
        }
        match op(&todo) {
            Ok(()) => return Ok(()),
            Err(failures) => {
                let transient = failures.iter().all(|f| matches!(f.error, Error::Platform(_)));
                if !transient || attempt >= retries {
                    return Err(failures);
                }
                attempt += 1;
                runtime::log(
                    Level::Warn,
                    &format!(
                        "{} machine(s) hit a transient error, retry {attempt}/{retries}: {}",
                        failures.len(),
                        describe_error(&failures[0].error)
                    ),
                );
                runtime::sleep(500 * u64::from(attempt));
                todo = failures.into_iter().map(|f| f.id).collect();
            }
        }
    }
}

/// Turn a batch failure into one error of the same kind as the first machine's, with context.
fn explain(failures: Vec<MachineError>, context: &str) -> Error {
    let first = &failures[0];
    let more = if failures.len() > 1 {
        format!(" (and {} more machine(s))", failures.len() - 1)
    } else {
        String::new()
    };
    let msg = format!("{context}: machine {}: {}{more}", first.id, describe_error(&first.error));
    match first.error {
        Error::NotFound(_) => Error::NotFound(msg),
        Error::Conflict(_) => Error::Conflict(msg),
        Error::Timeout(_) => Error::Timeout(msg),
        Error::Unhealthy(_) => Error::Unhealthy(msg),
        Error::Platform(_) => Error::Platform(msg),
        Error::Denied(_) => Error::Denied(msg),
        Error::Invalid(_) => Error::Invalid(msg),
        Error::Unsupported(_) => Error::Unsupported(msg),
    }
}

fn describe_error(e: &Error) -> String {
    match e {
        Error::NotFound(m) => format!("not found: {m}"),
        Error::Conflict(m) => format!("conflict: {m}"),
        Error::Timeout(m) => format!("timed out: {m}"),
        Error::Unhealthy(m) => format!("unhealthy: {m}"),
        Error::Platform(m) => format!("platform error: {m}"),
        Error::Denied(m) => format!("denied: {m}"),
        Error::Invalid(m) => format!("invalid: {m}"),
        Error::Unsupported(m) => format!("unsupported: {m}"),
    }
}

/// The app's machines, retrying transient (`platform`) errors like every other call.
fn list_machines(retries: u32) -> Result<Vec<cutover::strategy::types::Machine>, Error> {
    let mut attempt = 0;
    loop {
        match machines::list() {
            Err(Error::Platform(m)) if attempt < retries => {
                attempt += 1;
                runtime::log(
                    Level::Warn,
                    &format!("listing machines failed ({m}), retry {attempt}/{retries}"),
                );
                runtime::sleep(500 * u64::from(attempt));
            }
            other => return other,
        }
    }
}

export!(Immediate);
