//! Finishing leftovers: what a deploy could not clean up past its point of no return.
//!
//! A strategy that got the new release serving but could not destroy (or stop) an old machine because
//! the platform stayed down past its retry budget ends `succeeded` and tags the machine
//! `cutover_leftover = "destroy by v2"`; the driver records the tagged machines with the release. Once
//! the platform is back, `cutover resume` finishes them (when there is no interrupted deploy to take
//! up): this module. It is the driver's job rather than a strategy's because each leftover says what
//! is left to do in the platform's own verbs (stop, destroy), so no strategy has to run, and it works
//! alike for the leftovers of any strategy, in any SDK, on any platform.
//!
//! Leftovers are found two ways: by their tag on the platform (which also finds those of earlier
//! deploys, as flyctl finds the zombie blue machines of an earlier deploy), and in the journal's record
//! of each release. The record is then brought in line: a leftover finished, or no longer on the
//! platform, is cleared from every release that listed it.

use crate::deploy::list_with_retries;
use crate::lease::DeployLeases;
use crate::status::{LEFTOVER_KEY, leftovers};
use crate::{Deploy, DeployError};
use cutover_core::{ErrorKind, MachineState, OpError, Platform, StopSpec};
use cutover_journal::Leftover;
use futures::StreamExt;
use serde::Serialize;
use std::time::Duration;

/// What `cutover resume` did about the leftovers.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    /// The app.
    pub app: String,
    /// The platform the leftovers were on (`sim`, `local`, `fly`).
    pub platform: String,
    /// The leftovers finished (destroyed, or stopped and untagged).
    pub finished: Vec<Leftover>,
    /// The leftovers still to do, each with why not.
    pub remaining: Vec<Unfinished>,
    /// Leftovers the journal listed that are no longer on the platform (finished by someone else, or
    /// by a later deploy): cleared from the record.
    pub gone: Vec<Leftover>,
}

impl CleanupReport {
    /// Whether nothing is left over any more.
    pub fn done(&self) -> bool {
        self.remaining.is_empty()
    }
}

/// A leftover that could not be finished, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unfinished {
    /// The leftover.
    #[serde(flatten)]
    pub leftover: Leftover,
    /// The platform's last answer, or why the tag was not understood.
    pub error: String,
}

/// How to finish leftovers: how old machines are stopped, and how long each call may be retried.
#[derive(Debug, Clone)]
pub struct Finishing {
    /// How a machine is stopped (the config's `kill_signal` and `kill_timeout`).
    pub stop: StopSpec,
    /// How long transient platform errors are retried, per leftover (the config's `wait_timeout`).
    pub budget: Duration,
    /// How many leftovers are worked on at once.
    pub concurrency: usize,
}

impl Deploy<'_> {
    /// Finish the app's leftovers: `Ok(None)` when there are none, on the platform or in the journal.
    /// Called by `cutover resume` when there is no interrupted deploy to take up.
    pub async fn cleanup(&self) -> Result<Option<CleanupReport>, DeployError> {
        let config = self.config;
        let journal = match self.target.state() {
            Some(state) if state.has_journal() => Some(state.journal()?),
            _ => None,
        };
        let records = match &journal {
            Some(j) => j.releases(&config.app)?,
            None => vec![],
        };
        let recorded: Vec<(i64, Vec<Leftover>)> =
            records.iter().filter(|r| !r.leftovers.is_empty()).map(|r| (r.id, r.leftovers.clone())).collect();

        // Only attached to a local daemon already running: none means no machines (they stop with
        // it), and starting one to find nothing would be a change for nothing.
        let Some(opened) = self.target.open_to_read(config).await? else { return Ok(None) };
        let platform = opened.platform.clone();
        let machines = list_with_retries(&*platform).await?;
        let mut tagged = leftovers(&machines);
        if tagged.is_empty() && recorded.is_empty() {
            return Ok(None);
        }
        let present = |id: &str| machines.iter().any(|m| m.id == id);
        // The latest release's record also lists what its strategy declared left over but could not
        // tag (the metadata API was down too): still on the platform, untagged, it is finished from
        // the record. Only the latest's: a later deploy saw an earlier one's untagged machine as any
        // other and may have made it its own.
        if let Some(latest) = records.last() {
            let untagged =
                latest.leftovers.iter().filter(|l| present(&l.id) && !tagged.iter().any(|t| t.id == l.id));
            tagged.extend(untagged.cloned().collect::<Vec<_>>());
        }
        let gone: Vec<Leftover> = {
            let mut g: Vec<Leftover> =
                recorded.iter().flat_map(|(_, l)| l.iter()).filter(|l| !present(&l.id)).cloned().collect();
            g.sort_by(|a, b| a.id.cmp(&b.id));
            g.dedup_by(|a, b| a.id == b.id);
            g
        };

        let ids: Vec<String> = tagged.iter().map(|l| l.id.clone()).collect();
        let leases =
            DeployLeases::acquire(platform.clone(), &ids, config.cutover.lease_ttl, opened.concurrency)
                .await
                .map_err(|e| DeployError::Busy(e.to_string()))?;
        if let Err(e) = platform.begin_changes() {
            leases.release().await;
            return Err(DeployError::platform(e));
        }
        let how = Finishing {
            stop: StopSpec { signal: config.kill_signal.clone(), timeout: config.kill_timeout },
            budget: config.wait_timeout,
            concurrency: opened.concurrency,
        };
        tracing::info!(
            "finishing {} leftover machine(s) of {} (tagged {LEFTOVER_KEY})",
            tagged.len(),
            config.app
        );
        let (finished, remaining) = finish(&*platform, &tagged, &how).await;
        leases.release().await;
        if let Err(e) = platform.end_run() {
            tracing::error!("{}", e.message);
        }

        // The record follows the platform: what is still tagged stays listed, the rest is cleared.
        if let Some(j) = &journal {
            for (id, listed) in &recorded {
                let still: Vec<Leftover> = listed
                    .iter()
                    .filter(|l| remaining.iter().any(|r| r.leftover.id == l.id))
                    .cloned()
                    .collect();
                if still.len() != listed.len() {
                    j.leftovers(*id, &still)?;
                }
            }
        }
        Ok(Some(CleanupReport {
            app: config.app.clone(),
            platform: platform.name().to_string(),
            finished,
            remaining,
            gone,
        }))
    }
}

/// Finish each of `left` as its tag says, `how.concurrency` at a time: `destroy` destroys it,
/// `stop-destroy` stops it first (so it exits on its kill signal, not killed), `stop` stops it and
/// clears the tag (it is a standby that should not run). Transient errors are retried for the budget.
/// Returns what was finished and what was not, with why.
pub async fn finish(
    platform: &dyn Platform,
    left: &[Leftover],
    how: &Finishing,
) -> (Vec<Leftover>, Vec<Unfinished>) {
    let results: Vec<(Leftover, Result<(), String>)> = futures::stream::iter(left)
        .map(|l| async move { (l.clone(), finish_one(platform, l, how).await) })
        .buffer_unordered(how.concurrency.max(1))
        .collect()
        .await;
    let mut finished = vec![];
    let mut remaining = vec![];
    for (leftover, result) in results {
        match result {
            Ok(()) => finished.push(leftover),
            Err(error) => remaining.push(Unfinished { leftover, error }),
        }
    }
    finished.sort_by(|a, b| a.id.cmp(&b.id));
    remaining.sort_by(|a, b| a.leftover.id.cmp(&b.leftover.id));
    (finished, remaining)
}

/// One leftover, as its tag says; the error names the step that failed.
async fn finish_one(platform: &dyn Platform, l: &Leftover, how: &Finishing) -> Result<(), String> {
    let id = l.id.as_str();
    let todo = l.todo.split_whitespace().next().unwrap_or_default();
    let (stop, destroy) = match todo {
        "destroy" => (false, true),
        "stop-destroy" => (true, true),
        "stop" => (true, false),
        other => {
            return Err(format!(
                "its tag {LEFTOVER_KEY}={:?} says {other:?}, which is none of destroy, stop-destroy, stop; \
                 finish it by hand",
                l.todo
            ));
        }
    };
    let wait = how.stop.timeout + Duration::from_secs(30);
    let step = |what: &'static str, e: OpError| format!("{what} {id} failed: {e}");
    let state = match patiently(how.budget, || platform.get(id)).await {
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(step("reading", e)),
        Ok(m) => m.state,
    };
    if stop && !matches!(state, MachineState::Stopped | MachineState::Destroyed) {
        let stopped = patiently(how.budget, || async {
            match platform.stop(id, &how.stop).await {
                Err(e) if e.kind != ErrorKind::NotFound => Err(e),
                _ => platform.wait_state(id, MachineState::Stopped, wait).await,
            }
        })
        .await;
        match stopped {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(step("stopping", e)),
            Ok(()) => {}
        }
    }
    if destroy {
        return match patiently(how.budget, || platform.destroy(id)).await {
            Err(e) if e.kind != ErrorKind::NotFound => Err(step("destroying", e)),
            _ => Ok(()),
        };
    }
    patiently(how.budget, || platform.set_metadata(id, LEFTOVER_KEY, ""))
        .await
        .map_err(|e| step("untagging", e))
}

/// Call `op` until it succeeds, fails for good, or transient errors (`Platform`, `Timeout`) have gone
/// on for `budget`: backoff from 200 ms, doubling, capped at 10 s (as the SDKs retry clean-up).
async fn patiently<T, F, Fut>(budget: Duration, mut op: F) -> Result<T, OpError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OpError>>,
{
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        match op().await {
            Err(e)
                if matches!(e.kind, ErrorKind::Platform | ErrorKind::Timeout)
                    && started.elapsed() < budget =>
            {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_sim::{Scenario, SimWorld};

    fn how() -> Finishing {
        Finishing {
            stop: StopSpec { signal: "SIGINT".into(), timeout: Duration::from_secs(5) },
            budget: Duration::from_secs(60),
            concurrency: 4,
        }
    }

    /// Each tag is done as it says; a tag that says something else is left, with why; a machine
    /// already gone counts as finished.
    #[tokio::test(start_paused = true)]
    async fn each_leftover_is_finished_as_its_tag_says() {
        let scenario = Scenario::parse("[fleet]\nmachines = 4\n").unwrap();
        let world = SimWorld::new(scenario, "app", "img:v1", vec![]);
        let p = world.platform("app");
        let ids: Vec<String> = p.list().await.unwrap().into_iter().map(|m| m.id).collect();
        let tags = ["destroy by v2", "stop by v2", "uncordon by v2", "stop-destroy by v2"];
        for (id, tag) in ids.iter().zip(tags) {
            p.set_metadata(id, LEFTOVER_KEY, tag).await.unwrap();
        }
        let mut left = leftovers(&p.list().await.unwrap());
        left.push(Leftover { id: "gone".into(), todo: "destroy by v1".into() });
        let (finished, remaining) = finish(&p, &left, &how()).await;

        let done: Vec<&str> = finished.iter().map(|l| l.id.as_str()).collect();
        let mut want = vec![ids[0].as_str(), ids[1].as_str(), ids[3].as_str(), "gone"];
        want.sort();
        assert_eq!(done, want);
        assert_eq!(remaining.len(), 1);
        assert_eq!(remaining[0].leftover.id, ids[2]);
        assert!(remaining[0].error.contains("none of destroy, stop-destroy, stop"), "{}", remaining[0].error);

        tokio::time::sleep(Duration::from_secs(30)).await;
        let fleet = p.list().await.unwrap();
        let ids_now: Vec<&str> = fleet.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids_now, [ids[1].as_str(), ids[2].as_str()], "destroyed ones are gone");
        assert_eq!(fleet[0].state, MachineState::Stopped, "the standby is stopped");
        assert_eq!(leftovers(&fleet).len(), 1, "and untagged; the unknown tag stays");
    }

    /// While the platform refuses, nothing is finished and the error names the step and the answer.
    #[tokio::test(start_paused = true)]
    async fn a_platform_still_down_leaves_them_with_its_answer() {
        let scenario =
            Scenario::parse("[fleet]\nmachines = 2\n[faults]\ndown_calls = [\"destroy machine\"]\n").unwrap();
        let world = SimWorld::new(scenario, "app", "img:v1", vec![]);
        let p = world.platform("app");
        let id = p.list().await.unwrap()[0].id.clone();
        let left = vec![Leftover { id: id.clone(), todo: "destroy by v2".into() }];
        let (finished, remaining) = finish(&p, &left, &how()).await;
        assert!(finished.is_empty());
        assert!(remaining[0].error.starts_with(&format!("destroying {id} failed")), "{}", remaining[0].error);
        assert_eq!(p.list().await.unwrap().len(), 2);
    }
}
