//! The rolling strategy: replace machines in place, a batch at a time.
//!
//! Per process group, machines not yet on the target release are taken in batches of `max_unavailable`
//! (a count, or a fraction of the group rounded up; Fly's default is 0.33). Each batch is cordoned,
//! updated, waited on until started and then until passing, and uncordoned. The first failure stops the
//! roll: machines of later batches are never touched, so they keep serving the previous release.
//!
//! Machines that were stopped before the deploy are updated but stay stopped, as flyctl does. Machines
//! already on the target release are skipped, so running the same deploy again finishes a partial one.

wit_bindgen::generate!({ path: "../../wit", world: "strategy" });

use cutover::strategy::runtime::{self, Level};
// The world `use`s DeployPlan, Error and StrategyInfo, so they are already in scope at the root.
use cutover::strategy::types::{
    Machine, MachineError, MachineState, MaxUnavailable, ParamKind, ParamSpec, ParamValue,
};
use cutover::strategy::{health, machines, traffic};
use std::collections::BTreeMap;

struct Rolling;

/// How often a batch operation is retried on transient (`platform`) errors, by default.
const DEFAULT_RETRIES: i64 = 3;

impl Guest for Rolling {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "rolling".into(),
            summary: "Replace machines in place, max_unavailable at a time: cordon, update, wait \
                      started, wait healthy, uncordon. Stops at the first failure."
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
        let can_cordon = traffic::capabilities().cordon;
        let fleet = machines::list()?;

        let mut groups: BTreeMap<String, Vec<Machine>> = BTreeMap::new();
        for m in fleet {
            groups.entry(m.process_group.clone()).or_default().push(m);
        }
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
        for (group, members) in &groups {
            let pending: Vec<&Machine> =
                members.iter().filter(|m| m.release.version != plan.target.version).collect();
            if pending.is_empty() {
                continue;
            }
            let size = batch_size(&plan.max_unavailable, members.len());
            let batches = pending.len().div_ceil(size);
            for (index, batch) in pending.chunks(size).enumerate() {
                runtime::phase(&format!("{group}: batch {}/{batches}", index + 1));
                let ids: Vec<String> = batch.iter().map(|m| m.id.clone()).collect();
                // Machines that were serving must come back; stopped ones are updated and stay stopped.
                let serving: Vec<String> =
                    batch.iter().filter(|m| should_run(m.state)).map(|m| m.id.clone()).collect();

                let step = (|| {
                    if can_cordon {
                        with_retries(retries, &ids, traffic::cordon)?;
                    }
                    with_retries(retries, &ids, |ids| machines::update(ids, &plan.target))?;
                    with_retries(retries, &serving, |ids| {
                        machines::wait_state(ids, MachineState::Started, plan.wait_timeout_ms)
                    })?;
                    with_retries(retries, &serving, |ids| health::wait_healthy(ids, plan.wait_timeout_ms))?;
                    if can_cordon {
                        with_retries(retries, &serving, traffic::uncordon)?;
                    }
                    Ok(())
                })();
                if let Err(failures) = step {
                    let untouched = to_move - moved - batch.len();
                    return Err(explain(
                        failures,
                        &format!(
                            "{group} batch {}/{batches} failed ({} machine(s) in it); {moved} machine(s) \
                             already on v{}, {untouched} untouched and still on the previous release",
                            index + 1,
                            batch.len(),
                            plan.target.version
                        ),
                    ));
                }
                moved += batch.len();
                runtime::progress(moved as u32, to_move as u32);
            }
        }
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

/// Machines in one batch: a count as given, or a fraction of the group rounded up; at least one.
fn batch_size(max: &MaxUnavailable, group_len: usize) -> usize {
    let n = match *max {
        MaxUnavailable::Count(n) => n as usize,
        MaxUnavailable::Fraction(f) => (f * group_len as f64).ceil() as usize,
    };
    n.max(1)
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

export!(Rolling);
