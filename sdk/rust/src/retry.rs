//! Retries of transient (`platform`) errors. A real platform answers a 503 now and then; a strategy
//! that stopped a deploy on the first one would fail for nothing, and one that retried everything would
//! hammer a machine whose checks fail. These retry exactly the machines whose error was transient.

use crate::Error;
use crate::errors::{describe_error, is_transient};
use crate::params;
use crate::runtime::{self, Level};
use crate::types::{MachineError, ParamKind, ParamSpec, ParamValue};

/// How often a machine operation is retried on transient (`platform`) errors, by default.
pub const DEFAULT_RETRIES: i64 = 3;

/// The `retries` parameter every built-in strategy declares (declare it too, so users can tune it).
pub fn retries_param() -> ParamSpec {
    ParamSpec {
        name: "retries".into(),
        kind: ParamKind::Integer,
        default: Some(ParamValue::Integer(DEFAULT_RETRIES)),
        summary: "How often a machine operation is retried after a transient platform error.".into(),
    }
}

/// The `retries` parameter of this deploy (negative values count as 0).
pub fn retries() -> u32 {
    params::get_count("retries", DEFAULT_RETRIES as u32)
}

/// The pause before retry number `attempt` (1-based): 0.5 s, 1 s, 1.5 s, … on the host's clock, so a
/// struggling platform gets a little more room each time.
fn backoff_ms(attempt: u32) -> u64 {
    500 * u64::from(attempt)
}

/// Run a batch operation, retrying only the machines whose error was transient (`platform`), up to
/// `retries` times.
///
/// Machines that failed for good are set aside and the transient ones are still retried, so the
/// result says what became of every machine: a crashed machine in a batch does not leave the others'
/// transient errors standing. The failures come back with the lasting ones first, in the order the
/// batch listed them, then the transient ones that outlasted their retries: when one machine's check
/// failed and another's call hit a 503 in the same batch, the check is what stopped the deploy, and
/// [`crate::explain`] reports the first failure (its kind becomes the deploy's error).
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
            failures.into_iter().partition(|f| is_transient(&f.error));
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
        runtime::sleep(backoff_ms(attempt));
        todo = transient.into_iter().map(|f| f.id).collect();
    }
    if lasting.is_empty() { Ok(()) } else { Err(lasting) }
}

/// One host call that is not a batch, retrying transient (`platform`) errors like every other call.
/// `what` names the call in the log ("listing machines").
pub fn retry<T>(retries: u32, what: &str, mut call: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut attempt = 0;
    loop {
        match call() {
            Err(Error::Platform(m)) if attempt < retries => {
                attempt += 1;
                runtime::log(Level::Warn, &format!("{what} failed ({m}), retry {attempt}/{retries}"));
                runtime::sleep(backoff_ms(attempt));
            }
            other => return other,
        }
    }
}
