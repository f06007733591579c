//! The bounds on one call's size: how many machines it may name, how long a metadata entry, a log
//! line or a metrics query may be, how many release weights it may set, how many values it may judge.
//!
//! A strategy is untrusted code: without these, one call could make the host hold millions of pending
//! operations and replies, or write a megabyte into every log line. A call over a bound is refused
//! whole, before anything reaches the platform (a log line is cut instead: losing the end of a message
//! is better than losing the message).

use cutover_core::events::HostCall;
use cutover_core::judge::MAX_SAMPLES;
use cutover_core::{ErrorKind, OpError};

/// Longest log line kept from a strategy; longer lines are cut (a strategy must not flood the log).
const MAX_LOG_LINE: usize = 4096;
/// Machines one call may name: far above any fleet a deploy drives, far below what would let a
/// strategy make the host hold millions of pending operations and replies.
pub const MAX_IDS_PER_CALL: usize = 10_000;
/// Longest metadata key or value, and most release weights, one call may pass.
const MAX_METADATA: usize = 4096;
const MAX_WEIGHTS: usize = 64;
/// Most steps one pipeline may take per machine (a roll takes five; a step is a host operation, and
/// a few dozen cover any sequence of them).
const MAX_STEPS: usize = 32;
/// Longest PromQL expression a strategy may send (real ones are a few hundred bytes).
const MAX_PROMQL: usize = 16 * 1024;

/// Cut an over-long strategy log line, saying how much was dropped.
pub fn truncate_log(mut message: String) -> String {
    if message.len() > MAX_LOG_LINE {
        let mut cut = MAX_LOG_LINE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let dropped = message.len() - cut;
        message.truncate(cut);
        message.push_str(&format!(" … [{dropped} bytes cut]"));
    }
    message
}

/// The refusal of a call whose arguments are over the host's bounds.
pub(super) fn oversized(call: &HostCall) -> Option<OpError> {
    let ids = match call {
        HostCall::SetMetadata { key, value, .. } if key.len().max(value.len()) > MAX_METADATA => {
            return Some(OpError::new(
                ErrorKind::Invalid,
                format!(
                    "metadata keys and values are at most {MAX_METADATA} bytes; this one is {}",
                    key.len().max(value.len())
                ),
            ));
        }
        HostCall::SetWeights { weights } if weights.len() > MAX_WEIGHTS => {
            return Some(OpError::new(
                ErrorKind::Invalid,
                format!("{} release weights in one call; at most {MAX_WEIGHTS}", weights.len()),
            ));
        }
        HostCall::MetricsQuery { promql, .. } | HostCall::MetricsRange { promql, .. }
            if promql.len() > MAX_PROMQL =>
        {
            return Some(OpError::new(
                ErrorKind::Invalid,
                format!("a metrics query is at most {MAX_PROMQL} bytes; this one is {}", promql.len()),
            ));
        }
        HostCall::Judge { canary, baseline, .. } if canary.len().max(baseline.len()) > MAX_SAMPLES => {
            return Some(OpError::new(
                ErrorKind::Invalid,
                format!(
                    "the judge takes at most {MAX_SAMPLES} values a side; this call has {} and {}",
                    canary.len(),
                    baseline.len()
                ),
            ));
        }
        HostCall::Pipeline { steps, .. } if steps.len() > MAX_STEPS => {
            return Some(OpError::new(
                ErrorKind::Invalid,
                format!("a pipeline takes at most {MAX_STEPS} steps; this one has {}", steps.len()),
            ));
        }
        _ => call.machine_ids().map_or(0, <[String]>::len),
    };
    (ids > MAX_IDS_PER_CALL).then(|| {
        OpError::new(
            ErrorKind::Invalid,
            format!(
                "`{}` names {ids} machines; one call may name at most {MAX_IDS_PER_CALL} (split the list)",
                call.operation()
            ),
        )
    })
}
