//! Retries of transient (`platform`) errors. A real platform answers a 503 now and then, and a
//! struggling one for minutes on end; a strategy that stopped a deploy on the first one would fail for
//! nothing, and one that retried everything would hammer a machine whose checks fail. These retry
//! exactly the machines whose error was transient, for as long as a time budget allows: by default
//! the deploy's `wait_timeout`, the time the app's owner already agreed any one step may take.
//!
//! Every operation retried here is idempotent (cordoning a cordoned machine, destroying a destroyed
//! one, waiting again), so retrying it until the budget is spent is safe. The one operation that is
//! not, `clone-from` (a retry after a lost answer could make a second machine), is retried by count
//! only: pass [`Retry::count_only`].

use crate::DeployPlan;
use crate::Error;
use crate::errors::{describe_error, is_transient};
use crate::params;
use crate::runtime::{self, Level};
use crate::types::{MachineError, ParamKind, ParamSpec, ParamValue};

/// How often a machine operation is retried on transient (`platform`) errors at least, by default.
pub const DEFAULT_RETRIES: i64 = 3;

/// The longest pause between two attempts: a platform that is down is asked again at least this often.
const MAX_BACKOFF_MS: u64 = 10_000;

/// The `retries` parameter every built-in strategy declares (declare it too, so users can tune it).
pub fn retries_param() -> ParamSpec {
    ParamSpec {
        name: "retries".into(),
        kind: ParamKind::Integer,
        default: Some(ParamValue::Integer(DEFAULT_RETRIES)),
        summary: "How often a machine operation is retried at least after a transient platform error; \
                  idempotent ones are retried beyond that for as long as wait_timeout allows."
            .into(),
    }
}

/// The `retries` parameter of this deploy (negative values count as 0).
pub fn retries() -> u32 {
    params::get_count("retries", DEFAULT_RETRIES as u32)
}

/// How long a transient error is retried: at least `retries` times, and beyond that until `budget_ms`
/// has passed since the operation's first failure (on the host's clock; read only once something
/// failed, so an operation that succeeds at once costs no extra host call).
///
/// A bare count converts into a policy without a budget (`3.into()`), which retries exactly as often
/// as it says: what every SDK function did before budgets, so strategies passing a count keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries made whatever the budget says.
    pub retries: u32,
    /// Milliseconds, from an operation's first failure, during which it is retried again and again.
    pub budget_ms: u64,
}

impl Retry {
    /// This deploy's policy: the `retries` parameter, and the plan's `wait_timeout` as the budget.
    pub fn for_plan(plan: &DeployPlan) -> Self {
        Self { retries: retries(), budget_ms: plan.wait_timeout_ms }
    }

    /// The same count without the budget, for an operation that is not idempotent.
    pub fn count_only(self) -> Self {
        Self { budget_ms: 0, ..self }
    }

    /// Whether retry number `attempt` (1-based) may go ahead. `started` is when the first failure was
    /// seen (host clock, ms), read on the first call.
    pub(crate) fn allows(self, attempt: u32, started: &mut Option<u64>) -> bool {
        let first = *started.get_or_insert_with(runtime::now);
        attempt <= self.retries
            || (self.budget_ms > 0 && runtime::now().saturating_sub(first) < self.budget_ms)
    }

    /// Whether retry number `attempt` of one machine's step in a pipeline may go ahead: at least
    /// `retries`, and beyond that while the pauses before its retries fit in the budget. A pipeline
    /// machine is retried only once the whole call returns, when its last machine is done (a boot, a
    /// drain), so its retries come a call apart; counted by the clock, a machine whose cordon failed
    /// three times beside long boots would be out of time after four tries where [`with_retries`]
    /// would have made some thirty. Counted by its pauses, it gets as many.
    #[cfg(not(feature = "contract-0-1"))]
    pub(crate) fn allows_in_pipeline(self, attempt: u32) -> bool {
        attempt <= self.retries || (1..=attempt).map(backoff_ms).sum::<u64>() < self.budget_ms
    }

    /// How the log names retry number `attempt`.
    pub(crate) fn label(self, attempt: u32) -> String {
        if attempt <= self.retries || self.budget_ms == 0 {
            format!("retry {attempt}/{}", self.retries)
        } else {
            format!("retry {attempt} (within {} s)", self.budget_ms / 1000)
        }
    }
}

impl From<u32> for Retry {
    fn from(retries: u32) -> Self {
        Self { retries, budget_ms: 0 }
    }
}

/// The pause before retry number `attempt` (1-based): 0.5 s, 1 s, 1.5 s, … up to 10 s, on the host's
/// clock, so a struggling platform gets a little more room each time and a down one is still asked
/// again every 10 s.
pub(crate) fn backoff_ms(attempt: u32) -> u64 {
    (500 * u64::from(attempt)).min(MAX_BACKOFF_MS)
}

/// Say that `machines` machine(s) hit a transient error (the first being `first`) and will be tried
/// again, then wait the backoff of retry number `attempt`: the pause every batch retry takes.
pub(crate) fn pause_before_retry(policy: Retry, attempt: u32, machines: usize, first: &Error) {
    runtime::log(
        Level::Warn,
        &format!(
            "{machines} machine(s) hit a transient error, {}: {}",
            policy.label(attempt),
            describe_error(first)
        ),
    );
    runtime::sleep(backoff_ms(attempt));
}

/// Run a batch operation, retrying only the machines whose error was transient (`platform`), as long
/// as `policy` allows (a count converts into a policy: see [`Retry`]).
///
/// Machines that failed for good are set aside and the transient ones are still retried, so the
/// result says what became of every machine: a crashed machine in a batch does not leave the others'
/// transient errors standing. The failures come back with the lasting ones first, in the order the
/// batch listed them, then the transient ones that outlasted their retries: when one machine's check
/// failed and another's call hit a 503 in the same batch, the check is what stopped the deploy, and
/// [`crate::explain`] reports the first failure (its kind becomes the deploy's error).
pub fn with_retries(
    policy: impl Into<Retry>,
    ids: &[String],
    mut op: impl FnMut(&[String]) -> Result<(), Vec<MachineError>>,
) -> Result<(), Vec<MachineError>> {
    let policy = policy.into();
    let mut started = None;
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
        attempt += 1;
        if !policy.allows(attempt, &mut started) {
            lasting.extend(transient);
            break;
        }
        pause_before_retry(policy, attempt, transient.len(), &transient[0].error);
        todo = transient.into_iter().map(|f| f.id).collect();
    }
    if lasting.is_empty() { Ok(()) } else { Err(lasting) }
}

/// One host call that is not a batch, retrying transient (`platform`) errors like every other call.
/// `what` names the call in the log ("listing machines").
pub fn retry<T>(
    policy: impl Into<Retry>,
    what: &str,
    mut call: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let policy = policy.into();
    let mut started = None;
    let mut attempt = 0;
    loop {
        match call() {
            Err(Error::Platform(m)) if policy.allows(attempt + 1, &mut started) => {
                attempt += 1;
                runtime::log(Level::Warn, &format!("{what} failed ({m}), {}", policy.label(attempt)));
                runtime::sleep(backoff_ms(attempt));
            }
            other => return other,
        }
    }
}
