//! Manual gates: a deploy waiting at one marks it in the journal, and `cutover promote`, run from
//! another terminal (another process), records a promotion the waiting deploy takes.
//!
//! The journal is the channel because it is already shared by every process that deploys the app:
//! SQLite in WAL mode (or the shared PostgreSQL journal) lets the waiting deploy poll while
//! `cutover promote` writes, with no daemon.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::record::{ReleaseRecord, ReleaseStatus};
use cutover_core::{ErrorKind, OpError};
use std::time::Duration;

/// How often a waiting manual gate looks for a promotion.
const PROMOTION_POLL: Duration = Duration::from_millis(200);

impl Journal {
    /// Promote the manual gate a running deploy of `app` waits at (`gate`, or whichever it waits at).
    /// Returns the release and the gate promoted.
    pub fn promote(&self, app: &str, gate: Option<&str>) -> Result<(ReleaseRecord, String), JournalError> {
        let running: Vec<ReleaseRecord> =
            self.releases(app)?.into_iter().filter(|r| r.status == ReleaseStatus::Running).collect();
        let Some(release) = running.last().cloned() else {
            return Err(JournalError::Refused(format!(
                "no deploy of {app} is running, so there is no gate to promote (`cutover releases` shows \
                 the app's deploys)"
            )));
        };
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

    /// Mark the gate a release waits at (`None`: not waiting).
    fn set_waiting(&self, release_id: i64, gate: Option<&str>) -> Result<(), JournalError> {
        self.store.set_waiting(release_id, gate)
    }

    /// Take (consume) a promotion of `gate` for a release, if one was made.
    fn take_promotion(&self, release_id: i64, gate: &str) -> Result<bool, JournalError> {
        self.store.take_promotion(release_id, gate)
    }

    /// Wait, in real time, until `cutover promote` promotes `gate` of a release, or `timeout` passes.
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
        let step = move || -> Result<bool, JournalError> {
            if journal.take_promotion(release_id, &g)? {
                journal.set_waiting(release_id, None)?;
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                journal.set_waiting(release_id, None)?;
                return Ok(false);
            }
            std::thread::sleep(PROMOTION_POLL.min(deadline - std::time::Instant::now()));
            Ok(false)
        };
        let platform_error = |e: JournalError| OpError::new(ErrorKind::Platform, e.to_string());
        self.set_waiting(release_id, Some(gate)).map_err(platform_error)?;
        loop {
            let step = step.clone();
            let promoted = tokio::task::spawn_blocking(step)
                .await
                .map_err(|e| OpError::new(ErrorKind::Platform, format!("promotion poll: {e}")))?
                .map_err(platform_error)?;
            if promoted {
                return Ok(());
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
