//! What every built-in strategy shares: the bindings of `cutover:strategy@0.1.0` and the helpers a
//! strategy needs around them — retrying transient platform errors, turning batch failures into one
//! error with context, reading parameters with defaults.
//!
//! A strategy crate implements [`Guest`] and exports itself with `kit::export!(MyStrategy with_types_in
//! kit::bindings);`. Keeping the bindings here (rather than one `generate!` per strategy) is what lets the helpers
//! name the contract's types; it is the seed of the Rust SDK for strategy authors.

/// The generated bindings (in a module of their own: the export macros they define must not meet
/// their re-exports at the crate root).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "strategy",
        pub_export_macro: true,
        default_bindings_module: "kit::bindings",
    });
}

pub use bindings::cutover::strategy::{health, machines, runtime, traffic, types};
pub use bindings::{DeployPlan, Error, Guest, StrategyInfo, export};

pub mod green;
pub mod rollout;

use runtime::Level;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use types::{Machine, MachineError, MachineState, ParamKind, ParamSpec, ParamValue, Release};

/// How often a machine operation is retried on transient (`platform`) errors, by default.
pub const DEFAULT_RETRIES: i64 = 3;

/// The `retries` parameter every built-in strategy declares.
pub fn retries_param() -> ParamSpec {
    ParamSpec {
        name: "retries".into(),
        kind: ParamKind::Integer,
        default: Some(ParamValue::Integer(DEFAULT_RETRIES)),
        summary: "How often a machine operation is retried after a transient platform error.".into(),
    }
}

/// The `retries` parameter of this deploy.
pub fn retries() -> u32 {
    match runtime::param("retries") {
        Some(ParamValue::Integer(n)) => n.clamp(0, i64::from(u32::MAX)) as u32,
        _ => DEFAULT_RETRIES as u32,
    }
}

/// A boolean parameter, or `default` when it is unset.
pub fn param_bool(name: &str, default: bool) -> bool {
    match runtime::param(name) {
        Some(ParamValue::Boolean(b)) => b,
        _ => default,
    }
}

/// A duration parameter in milliseconds, or `default` when it is unset.
pub fn param_duration_ms(name: &str, default: u64) -> u64 {
    match runtime::param(name) {
        Some(ParamValue::DurationMs(ms)) => ms,
        _ => default,
    }
}

/// A machine that was meant to be serving before the deploy.
pub fn should_run(state: MachineState) -> bool {
    !matches!(state, MachineState::Stopped | MachineState::Suspended | MachineState::Created)
}

/// Run a batch operation, retrying only the machines whose error was transient (`platform`), up to
/// `retries` times.
///
/// Machines that failed for good are set aside and the transient ones are still retried, so the
/// result says what became of every machine: a crashed machine in a batch does not leave the others'
/// transient errors standing. The failures come back with the lasting ones first, in the order the
/// batch listed them, then the transient ones that outlasted their retries: when one machine's check
/// failed and another's call hit a 503 in the same batch, the check is what stopped the deploy, and
/// [`explain`] reports the first failure (its kind becomes the deploy's error).
pub fn with_retries(
    retries: u32,
    ids: &[String],
    mut op: impl FnMut(&[String]) -> Result<(), Vec<MachineError>>,
) -> Result<(), Vec<MachineError>> {
    let mut todo = ids.to_vec();
    let mut lasting: Vec<MachineError> = Vec::new();
    let mut attempt = 0;
    while !todo.is_empty() {
        let Err(failures) = op(&todo) else { break };
        let (transient, other): (Vec<MachineError>, Vec<MachineError>) =
            failures.into_iter().partition(|f| matches!(f.error, Error::Platform(_)));
        lasting.extend(other);
        if transient.is_empty() {
            break;
        }
        if attempt >= retries {
            lasting.extend(transient);
            break;
        }
        attempt += 1;
        runtime::log(
            Level::Warn,
            &format!(
                "{} machine(s) hit a transient error, retry {attempt}/{retries}: {}",
                transient.len(),
                describe_error(&transient[0].error)
            ),
        );
        runtime::sleep(500 * u64::from(attempt));
        todo = transient.into_iter().map(|f| f.id).collect();
    }
    if lasting.is_empty() { Ok(()) } else { Err(lasting) }
}

/// Turn a batch failure into one error of the same kind as the first machine's, with context.
pub fn explain(failures: Vec<MachineError>, context: &str) -> Error {
    let first = &failures[0];
    let more = if failures.len() > 1 {
        format!(" (and {} more machine(s))", failures.len() - 1)
    } else {
        String::new()
    };
    let msg = format!("{context}: machine {}: {}{more}", first.id, describe_error(&first.error));
    same_kind(&first.error, msg)
}

/// The same kind of error, its message prefixed by `context`.
pub fn with_context(e: Error, context: &str) -> Error {
    let msg = format!("{context}: {}", describe_error(&e));
    same_kind(&e, msg)
}

/// An error of the same kind as `e`, with the message `msg`.
fn same_kind(e: &Error, msg: String) -> Error {
    match e {
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

/// The same error, its message extended by `note`.
pub fn with_note(e: Error, note: &str) -> Error {
    match e {
        Error::NotFound(m) => Error::NotFound(m + note),
        Error::Conflict(m) => Error::Conflict(m + note),
        Error::Timeout(m) => Error::Timeout(m + note),
        Error::Unhealthy(m) => Error::Unhealthy(m + note),
        Error::Platform(m) => Error::Platform(m + note),
        Error::Denied(m) => Error::Denied(m + note),
        Error::Invalid(m) => Error::Invalid(m + note),
        Error::Unsupported(m) => Error::Unsupported(m + note),
    }
}

/// An error as a short sentence ("timed out: ...").
pub fn describe_error(e: &Error) -> String {
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

/// Which wait of [`wait_serving`] failed, and for which machines.
pub enum NotServing {
    /// Some machines never reached `started`.
    NotStarted(Vec<MachineError>),
    /// All started, but some did not pass their checks.
    Unhealthy(Vec<MachineError>),
}

impl NotServing {
    /// The machines that failed, whichever wait it was.
    pub fn failures(self) -> Vec<MachineError> {
        match self {
            Self::NotStarted(f) | Self::Unhealthy(f) => f,
        }
    }
}

/// Wait until `ids` are started, then until they pass their checks, each wait bounded by `timeout_ms`
/// and retried on transient errors: the step every strategy takes before letting machines serve.
pub fn wait_serving(retries: u32, ids: &[String], timeout_ms: u64) -> Result<(), NotServing> {
    with_retries(retries, ids, |ids| machines::wait_state(ids, MachineState::Started, timeout_ms))
        .map_err(NotServing::NotStarted)?;
    with_retries(retries, ids, |ids| health::wait_healthy(ids, timeout_ms)).map_err(NotServing::Unhealthy)
}

/// Stop `ids` gracefully (the plan's kill signal, killed after its kill timeout) and wait until none of
/// them runs, retrying transient errors: the step before destroying machines or leaving them stopped.
///
/// A machine whose process exits on its own while it stops (a crash) ends `failed` rather than
/// `stopped`: it is not running either, so it counts as stopped. The wait for `stopped` cannot see
/// that, so such a machine keeps its wait until `wait_timeout`; the machines whose wait timed out are
/// then looked up once (one `list`), and only those still running, or whose state could not be read,
/// are failures.
pub fn stop_machines(retries: u32, ids: &[String], plan: &DeployPlan) -> Result<(), Vec<MachineError>> {
    with_retries(retries, ids, |ids| machines::stop(ids, &plan.kill_signal, plan.kill_timeout_ms))?;
    let Err(failures) = with_retries(retries, ids, |ids| {
        machines::wait_state(ids, MachineState::Stopped, plan.wait_timeout_ms)
    }) else {
        return Ok(());
    };
    if !failures.iter().any(|f| matches!(f.error, Error::Timeout(_))) {
        return Err(failures);
    }
    let Ok(fleet) = list_machines(retries) else { return Err(failures) };
    let down = |id: &str| match fleet.iter().find(|m| m.id == id) {
        // Gone altogether counts as down too.
        None => true,
        Some(m) => matches!(m.state, MachineState::Stopped | MachineState::Failed | MachineState::Destroyed),
    };
    let left: Vec<MachineError> =
        failures.into_iter().filter(|f| !(matches!(f.error, Error::Timeout(_)) && down(&f.id))).collect();
    if left.is_empty() {
        runtime::log(Level::Info, "machines that failed while stopping are down: counted as stopped");
        Ok(())
    } else {
        Err(left)
    }
}

/// The app's machines, retrying transient (`platform`) errors like every other call.
pub fn list_machines(retries: u32) -> Result<Vec<Machine>, Error> {
    retry(retries, "listing machines", machines::list)
}

/// One host call that is not a batch, retrying transient (`platform`) errors like every other call.
pub fn retry<T>(retries: u32, what: &str, mut call: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut attempt = 0;
    loop {
        match call() {
            Err(Error::Platform(m)) if attempt < retries => {
                attempt += 1;
                runtime::log(Level::Warn, &format!("{what} failed ({m}), retry {attempt}/{retries}"));
                runtime::sleep(500 * u64::from(attempt));
            }
            other => return other,
        }
    }
}

/// A duration for logs: "5m", "1m30s", "2.5s", "250ms".
pub fn human(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 10_000 && !ms.is_multiple_of(1000) {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    // Whole seconds from 10 s on: "45s", "1m26s", "1h30m".
    let s = (ms + 500) / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out += &format!("{n}{unit}");
        }
    }
    out
}

/// Refuse machines with volumes before cloning them: a volume attaches to one machine only, so a clone
/// (a `clone` machine: "green", "canary") would start without the data (the clone gets no volume at all).
pub fn refuse_volumes<M: Borrow<Machine>>(strategy: &str, clone: &str, sources: &[M]) -> Result<(), Error> {
    let with_volumes: Vec<&Machine> =
        sources.iter().map(Borrow::borrow).filter(|m: &&Machine| !m.volumes.is_empty()).collect();
    let Some(first) = with_volumes.first() else { return Ok(()) };
    Err(Error::Invalid(format!(
        "{strategy} cannot deploy {} of the {} machine(s) because they have volumes (machine {} has {}): a \
         volume attaches to one machine only, so a {clone} clone cannot get its data. Use strategy = \
         \"rolling\", which updates machines in place and keeps their volumes. Nothing was changed.",
        with_volumes.len(),
        sources.len(),
        first.id,
        first.volumes.join(", ")
    )))
}

/// One `clone-from` call, shaped like a batch operation so `with_retries` re-clones only the failed
/// sources. Each clone created is recorded in `clone_of` under its source; a failure is reported under
/// the source's id.
pub fn clone_machines(
    sources: &[String],
    target: &Release,
    clone_of: &mut BTreeMap<String, String>,
) -> Result<(), Vec<MachineError>> {
    let results = machines::clone_from(sources, target, false);
    let mut failures = Vec::new();
    for (source, result) in sources.iter().zip(results) {
        match result {
            Ok(clone) => {
                clone_of.insert(source.clone(), clone);
            }
            Err(error) => failures.push(MachineError { id: source.clone(), error }),
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures) }
}
