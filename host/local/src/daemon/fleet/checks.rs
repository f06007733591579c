//! Health check results as the fleet keeps them: each machine's checks in the Machines API's shape,
//! and its consecutive failures for `wait-healthy`'s verdict.
//!
//! The prober (`health`) knows nothing of the fleet: it reports through a [`CheckOf`], which stands
//! for one check of one run of one machine, so results of a run that has ended are dropped.

use super::{Fleet, find, find_mut, now_rfc3339};
use crate::daemon::health;
use cutover_core::{CheckStatus, OpError};
use cutover_machines_api::ApiCheck;
use std::sync::Arc;

impl Fleet {
    /// Whether check results of `run` are still wanted.
    pub fn is_current(&self, app: &str, id: &str, run: u64) -> bool {
        let st = self.lock();
        find(&st, app, id).is_ok_and(|m| m.run == run && m.pid.is_some())
    }

    /// Record one check result of `run`.
    pub fn check_result(
        &self,
        app: &str,
        id: &str,
        run: u64,
        index: usize,
        status: CheckStatus,
        output: String,
    ) {
        let mut st = self.lock();
        let Ok(m) = find_mut(&mut st, app, id) else { return };
        if m.run != run || m.pid.is_none() {
            return;
        }
        let Some(check) = m.api.checks.get_mut(index) else { return };
        let name = check.name.clone();
        let before = check.status.clone();
        check.status = match status {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
        .into();
        check.output = output;
        check.updated_at = now_rfc3339();
        // Only verdicts count: a `warning` (no result yet, or inside the grace period) is not a failure.
        let failures = m.failures.entry(name).or_default();
        *failures = if status == CheckStatus::Critical { *failures + 1 } else { 0 };
        if before != m.api.checks[index].status {
            self.changed(&st, app);
        } else {
            // Same status: only wake waiters counting failures.
            self.changes.send_modify(|v| *v += 1);
        }
    }

    /// Consecutive failures of the machine's checks and whether its process is gone.
    pub fn health(&self, app: &str, id: &str) -> Result<(Vec<ApiCheck>, u32, Option<String>), OpError> {
        let st = self.lock();
        let m = find(&st, app, id)?;
        let worst = m.failures.values().copied().max().unwrap_or(0);
        let gone = m.pid.is_none().then(|| match (&m.start_error, m.last_exit) {
            (Some(why), _) => format!("the machine is {}: {why}", m.api.state),
            (None, Some(code)) => {
                format!("the machine is {} (its process exited with code {code})", m.api.state)
            }
            (None, None) => format!("the machine is {}", m.api.state),
        });
        Ok((m.api.checks.clone(), worst, gone))
    }
}

/// One check of one run of one machine: where its prober's results go.
pub(super) struct CheckOf {
    pub(super) fleet: Arc<Fleet>,
    pub(super) app: String,
    pub(super) id: String,
    pub(super) run: u64,
    /// The check's place in the app's checks (and the machine's).
    pub(super) index: usize,
}

impl health::Report for CheckOf {
    fn wanted(&self) -> bool {
        self.fleet.is_current(&self.app, &self.id, self.run)
    }

    fn result(&self, status: CheckStatus, output: String) {
        self.fleet.check_result(&self.app, &self.id, self.run, self.index, status, output);
    }
}
