//! Errors with context. The host reports a deploy's error as the strategy returns it, and its kind
//! (`unhealthy`, `timeout`, …) is what the user and the journal see first, so context is added to the
//! message while the kind of the underlying failure is kept.

use crate::Error;
use crate::types::MachineError;

/// Turn a batch failure into one error of the same kind as the first machine's, with context.
///
/// The first failure is the one reported by name: [`crate::with_retries`] lists lasting failures
/// before transient ones, so it is the cause rather than a retried hiccup.
pub fn explain(failures: Vec<MachineError>, context: &str) -> Error {
    let Some(first) = failures.first() else {
        // An empty failure list is a bug in the caller; still return a usable error.
        return Error::Platform(format!("{context}: failed (no machine named)"));
    };
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

/// The same kind of error, its message prefixed by `context` without repeating the kind: for context
/// added layer on layer (a gate, a metric, a query), where [`with_context`] would say "invalid:" at
/// each.
pub fn with_prefix(e: Error, context: &str) -> Error {
    let msg = match &e {
        Error::NotFound(m)
        | Error::Conflict(m)
        | Error::Timeout(m)
        | Error::Unhealthy(m)
        | Error::Platform(m)
        | Error::Denied(m)
        | Error::Invalid(m)
        | Error::Unsupported(m) => format!("{context}: {m}"),
    };
    same_kind(&e, msg)
}

/// The same error, its message extended by `note` (what the fleet was left with, say).
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

/// Whether `e` is worth retrying: only `platform` errors (API errors, network) are transient.
pub fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Platform(_))
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
