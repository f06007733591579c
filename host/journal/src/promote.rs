//! Manual gates: a deploy waiting at one marks it in the journal, and `cutover promote`, run from
//! another terminal (another process), records a promotion the waiting deploy takes.
//!
//! The journal is the channel because it is already shared by every process that deploys the app:
//! SQLite in WAL mode (or the shared PostgreSQL journal) lets the waiting deploy poll while
//! `cutover promote` writes, with no daemon.
//!
//! `cutover abort` (and the dashboard's Abort button) uses the same channel: it records a promotion of
//! the reserved gate [`ABORT_GATE`], and a deploy waiting at any gate that finds one fails its wait
//! with an error saying so, so the strategy undoes what it did as it would after a gate timeout. The
//! reserved name cannot clash with a strategy's gate (gate names never hold a `:`), and it needs no
//! new table: `cutover journal migrate` copies it like any promotion.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::record::{ReleaseRecord, ReleaseStatus};
use cutover_core::{ErrorKind, OpError};
use std::time::Duration;

/// How often a waiting manual gate looks for a promotion.
const PROMOTION_POLL: Duration = Duration::from_millis(200);

/// The gate name an abort is recorded under (see the module's documentation).
pub const ABORT_GATE: &str = "cutover:abort";

/// What one look at a waiting gate found.
enum Answer {
    Promoted,
    Aborted,
    Waiting,
}

impl Journal {
    /// Promote the manual gate a running deploy of `app` waits at (`gate`, or whichever it waits at).
    /// Returns the release and the gate promoted.
    pub fn promote(&self, app: &str, gate: Option<&str>) -> Result<(ReleaseRecord, String), JournalError> {
        let release = self.running(app, "promote")?;
        let gate = match (gate, &release.waiting_gate) {
            (Some(g), _) => g.to_string(),
            (None, Some(waiting)) => waiting.clone(),
            (None, None) => {
                return Err(JournalError::Refused(format!(
                    "the running deploy of {app} (v{}, {}) is not waiting at a manual gate yet; name the gate \
                     to promote it ahead of time (e.g. `cutover promote step-25`)",
                    release.target.version, release.strategy
                )));
            }
        };
        self.store.add_promotion(release.id, &gate)?;
        Ok((release, gate))
    }

    /// Abort the running deploy of `app` at the manual gate it waits at: its wait fails, and its
    /// strategy undoes what it did. Returns the release and the gate. A deploy that is not waiting at a
    /// gate is refused rather than aborted later at a gate it may never reach.
    pub fn abort(&self, app: &str) -> Result<(ReleaseRecord, String), JournalError> {
        let release = self.running(app, "abort")?;
        let Some(gate) = release.waiting_gate.clone() else {
            return Err(JournalError::Refused(format!(
                "the running deploy of {app} (v{}, {}) is not waiting at a manual gate; a deploy is \
                 aborted at its gate (or stop its process and run `cutover rollback`)",
                release.target.version, release.strategy
            )));
        };
        self.store.add_promotion(release.id, ABORT_GATE)?;
        Ok((release, gate))
    }

    /// The running deploy of `app`, for a command (`what`) that needs one.
    fn running(&self, app: &str, what: &str) -> Result<ReleaseRecord, JournalError> {
        let running = self.releases(app)?.into_iter().rev().find(|r| r.status == ReleaseStatus::Running);
        running.ok_or_else(|| {
            JournalError::Refused(format!(
                "no deploy of {app} is running, so there is no gate to {what} (`cutover releases` shows \
                 the app's deploys)"
            ))
        })
    }

    /// Mark the gate a release waits at (`None`: not waiting).
    fn set_waiting(&self, release_id: i64, gate: Option<&str>) -> Result<(), JournalError> {
        self.store.set_waiting(release_id, gate)
    }

    /// Take (consume) a promotion of `gate` for a release, if one was made.
    fn take_promotion(&self, release_id: i64, gate: &str) -> Result<bool, JournalError> {
        self.store.take_promotion(release_id, gate)
    }

    /// Wait, in real time, until `cutover promote` promotes `gate` of a release, `cutover abort` aborts
    /// it, or `timeout` passes.
    ///
    /// Polls from blocking threads: under the simulator's paused clock that also holds virtual time
    /// still (tokio does not jump the clock while a blocking task runs), so a person at a terminal has
    /// the gate's whole timeout to answer and the deploy's virtual deadline does not race them.
    pub async fn await_promotion(
        &self,
        release_id: i64,
        gate: &str,
        timeout: Duration,
    ) -> Result<(), OpError> {
        let deadline = std::time::Instant::now() + timeout;
        let journal = self.clone();
        let g = gate.to_string();
        let step = move || -> Result<Answer, JournalError> {
            // An abort first: one made together with a promotion must not outlive this gate.
            if journal.take_promotion(release_id, ABORT_GATE)? {
                journal.set_waiting(release_id, None)?;
                return Ok(Answer::Aborted);
            }
            if journal.take_promotion(release_id, &g)? {
                journal.set_waiting(release_id, None)?;
                return Ok(Answer::Promoted);
            }
            if std::time::Instant::now() >= deadline {
                journal.set_waiting(release_id, None)?;
                return Ok(Answer::Waiting);
            }
            std::thread::sleep(PROMOTION_POLL.min(deadline - std::time::Instant::now()));
            Ok(Answer::Waiting)
        };
        let platform_error = |e: JournalError| OpError::new(ErrorKind::Platform, e.to_string());
        self.set_waiting(release_id, Some(gate)).map_err(platform_error)?;
        loop {
            let step = step.clone();
            let answer = tokio::task::spawn_blocking(step)
                .await
                .map_err(|e| OpError::new(ErrorKind::Platform, format!("promotion poll: {e}")))?
                .map_err(platform_error)?;
            match answer {
                Answer::Promoted => return Ok(()),
                Answer::Aborted => {
                    return Err(OpError::new(
                        ErrorKind::Conflict,
                        format!("aborted at manual gate `{gate}` (`cutover abort`)"),
                    ));
                }
                Answer::Waiting => {}
            }
            if std::time::Instant::now() >= deadline {
                return Err(OpError::new(
                    ErrorKind::Timeout,
                    format!(
                        "manual gate `{gate}` was not promoted within {} (run `cutover promote {gate}` while \
                         the deploy waits)",
                        cutover_core::duration::display(timeout)
                    ),
                ));
            }
        }
    }
}
