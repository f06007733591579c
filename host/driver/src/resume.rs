//! `cutover resume`: take up a deploy whose process died (killed, crashed, machine lost).
//!
//! The journal holds the interrupted release's plan, the strategy that ran it (by reference and by
//! hash) and every call it made with its answer. A fresh instance of the same component is given the
//! same plan and seed and is answered from the journal (`runtime::replay`), which brings it to where the
//! dead process was without touching the platform; the change that was under way is reconciled with
//! the platform's actual state; then the deploy goes on live, appending to the same release's events.
//!
//! Everything that could make the replay unfaithful is checked before anything changes: the release
//! must be interrupted (its process gone), the component must hash the same, and every replayed call
//! must match. When a deploy cannot be resumed, the error says why and what the fleet looks like now.

use crate::Notifier;
use crate::deploy::{Ending, Goal, JournalGate, StrategyRun, list_with_retries, weights_now};
use crate::release_command::Resolution;
use crate::{Deploy, DeployError, DeployReport, ResolvedStrategy, lease, resolve_strategy};
use cutover_config::StrategyRef;
use cutover_core::Platform;
use cutover_core::events::{DeployStart, EventKind, EventSink, FleetSummary, Tee};
use cutover_journal::{self as journal, Journal, ReleaseKind, ReleaseRecord, ReleaseStatus, ResumeRecord};
use cutover_runtime::{Recorder, Replay};
use std::sync::Arc;
use std::time::Duration;

impl Deploy<'_> {
    /// Resume the app's interrupted deploy (the latest release, if its process is gone).
    pub async fn resume(&self) -> Result<DeployReport, DeployError> {
        self.resume_as(None).await
    }

    /// `cutover rollback` after a crash: `Ok(None)` when the app's latest deploy is not interrupted.
    ///
    /// The interrupted deploy is taken up and aborted (see `runtime::replay`), so its strategy undoes
    /// what it did on its own failure path, knowing exactly which machines it made and touched. If
    /// that leaves the fleet anywhere but wholly on the release the deploy started from, serving, the
    /// strategy then rolls the app back to it as a rollback release of its own. A deploy that cannot
    /// be resumed is rolled back directly.
    pub(crate) async fn roll_back_interrupted(&self) -> Result<Option<DeployReport>, DeployError> {
        let Some(state) = self.target.state() else { return Ok(None) };
        let journal = state.journal()?;
        let latest = journal.releases(&self.config.app)?.pop();
        let Some(release) = latest.filter(|r| r.status == ReleaseStatus::Interrupted) else {
            return Ok(None);
        };
        let Some(previous) = release.previous.clone() else { return Ok(None) };
        let why = format!(
            "aborted: `cutover rollback` is returning the app to v{} after the deploy's process died; undo \
             what this deploy did",
            previous.version
        );
        match self.resume_as(Some(why)).await {
            Ok(report) => {
                let back = report.fleet.by_version == [(previous.version, report.fleet.machines)]
                    && report.fleet.serving == report.fleet.machines;
                if back {
                    return Ok(Some(DeployReport {
                        outcome: cutover_core::events::Outcome::Succeeded,
                        rollback: true,
                        error: None,
                        target: previous,
                        previous: Some(report.target.clone()),
                        ..report
                    }));
                }
                tracing::warn!(
                    "undoing deploy #{} left the fleet off v{}; rolling back with the strategy",
                    release.id,
                    previous.version
                );
            }
            Err(DeployError::CannotResume(why)) => {
                tracing::warn!("{why}\nrolling back without undoing the interrupted deploy first");
            }
            Err(e) => return Err(e),
        }
        // On the platform the interrupted deploy ran on: the target was resolved to it.
        self.run_goal(Goal::Rollback { to: Some(previous.version) }).await.map(Some)
    }

    /// Resume, or with `abort`, resume only to undo (see [`Self::roll_back_interrupted`]).
    async fn resume_as(&self, abort: Option<String>) -> Result<DeployReport, DeployError> {
        let config = self.config;
        let (journal, release) = self.interrupted()?;
        // The platform the deploy ran on: the target was resolved to it.
        let opened = self.target.open(config).await?;
        let platform = opened.platform.clone();
        let machines = list_with_retries(&*platform).await?;
        let (record, strategy) = match self.replayable(&journal, &release).await? {
            Ok(replayable) => replayable,
            Err(why) => {
                // "The fleet now": an interrupted deploy may have left the split set.
                let fleet = FleetSummary::weighed(&machines, &weights_now(&*platform).await);
                return Err(cannot_resume(&release, why, &fleet));
            }
        };

        // The dead process's leases (Fly, the local daemon) lapse within one TTL.
        let ids: Vec<String> = machines.iter().map(|m| m.id.clone()).collect();
        let leases = acquire_patiently(platform.clone(), &ids, config.cutover.lease_ttl, opened.concurrency)
            .await
            .map_err(|e| DeployError::Busy(e.to_string()))?;
        let adopted = journal.adopt(release.id).map_err(DeployError::from);
        if let Err(e) = adopted.and_then(|()| platform.begin_changes().map_err(DeployError::platform)) {
            leases.release().await;
            return Err(e);
        }

        let aborting = abort.is_some();
        let mut replay = Replay::from_events(&record.events);
        if let Some(why) = abort {
            replay = replay.aborting(why, record.plan.target.clone());
        }
        let replay = Arc::new(replay);
        let last_ms = record.events.last().map_or(0, |e| e.at_ms);
        let clock = self.target.host_clock().continuing(last_ms);
        let wall = std::time::Instant::now();
        let limit_bytes = self.config.cutover.sandbox_for(&strategy.reference).0.journal_bytes;
        let notifier = Notifier::start(&self.config.cutover.notify, &self.config.app, Some(release.id))
            .with_release(&release);
        // What the interrupted run declared left over counts, as what this one will.
        let declared = Arc::new(crate::declared::Declared::default());
        declared.seed(&record.events);
        let recorder = self.resumed_recorder(
            &journal,
            &release,
            &record,
            clock,
            limit_bytes,
            &notifier,
            declared.clone(),
        );
        let rollback = release.kind == ReleaseKind::Rollback;
        if record.events.is_empty() {
            // Killed before its first event: the log starts here. A failure to record is kept by the
            // recorder: the strategy's first call then stops the run before it sends anything.
            let _ = recorder.record(EventKind::DeployStarted(Box::new(DeployStart {
                app: config.app.clone(),
                platform: platform.name().to_string(),
                strategy: strategy.info.name.clone(),
                target: record.plan.target.clone(),
                previous: record.plan.previous.clone(),
                machines: machines.len(),
                rollback,
            })));
        }
        let _ = recorder.record(EventKind::Resumed {
            replayed: replay.remaining() as u64,
            reconciled: replay.in_flight().as_ref().map(cutover_runtime::replay::describe),
            pid: std::process::id(),
            aborting,
        });
        tracing::info!(
            "resuming deploy #{} of {}: {} journaled call(s) to replay",
            release.id,
            config.app,
            replay.remaining()
        );

        // The release command: run again only when the dead process recorded no end of it (migration
        // tools record what they applied, so a second run is safe); never after it succeeded.
        let released = match (aborting, rollback, crate::release_command::resolve(&record.events)) {
            (true, ..) | (_, true, _) | (.., Resolution::Done) => None,
            (.., Resolution::Failed(e)) => Some(e),
            (.., how) => {
                let rerun = how == Resolution::Rerun;
                if rerun && self.config.release_command.is_some() {
                    tracing::info!(
                        "the release command of deploy #{} was running when its process died and no end was \
                         recorded: running it again",
                        release.id
                    );
                }
                self.release_command(&*platform, &recorder, clock, &record.plan.target, rerun).await
            }
        };
        if released.is_none()
            && !aborting
            && let Some((command, why)) = skipped_because(&record.events)
        {
            // A refusal is kept by the recorder: the strategy's first change is then never sent.
            let _ = recorder.record(EventKind::ReleaseCommandSkipped { command, why });
        }

        let run = StrategyRun {
            platform: platform.clone(),
            concurrency: opened.concurrency,
            clock,
            recorder: recorder.clone(),
            promotions: Some(Arc::new(JournalGate {
                journal: journal.clone(),
                release_id: release.id,
                notify: notifier.clone(),
            })),
            replay: Some(replay),
            metrics: opened.metrics.clone(),
            // The fleet the interrupted deploy started with, not the one it left: its bound is the
            // same in every process that runs it.
            fleet_at_start: record
                .events
                .iter()
                .find_map(|e| match &e.kind {
                    EventKind::DeployStarted(start) => Some(start.machines),
                    _ => None,
                })
                .unwrap_or(machines.len()),
        };
        let outcome = match released {
            Some(e) => Ok(Some(e)),
            None => self.run_strategy(&strategy, &record.plan, run).await,
        };
        let error = match outcome {
            Ok(error) => error,
            Err(d) => {
                leases.release().await;
                let fleet = list_with_retries(&*platform).await.unwrap_or(machines);
                return Err(cannot_resume(
                    &release,
                    format!("{d}; the resume stopped before changing anything"),
                    &FleetSummary::weighed(&fleet, &weights_now(&*platform).await),
                ));
            }
        };
        let ResumeRecord { plan, .. } = record;
        let running_before = crate::deploy::running(&machines);
        Ok(self
            .conclude(Ending {
                error,
                leases,
                platform,
                journal: Some(journal),
                release_id: Some(release.id),
                recorder,
                declared,
                clock,
                wall,
                rollback,
                running_before,
                target: plan.target,
                previous: plan.previous,
                notify: notifier,
            })
            .await)
    }

    /// The app's latest release, if it is an interrupted deploy (its process gone); otherwise why
    /// there is nothing to resume.
    fn interrupted(&self) -> Result<(Journal, ReleaseRecord), DeployError> {
        let app = &self.config.app;
        let state = self.target.state().ok_or_else(|| {
            DeployError::NothingToResume(
                "resuming reads the app's journal, and no state directory was given".into(),
            )
        })?;
        let journal = state.journal()?;
        let Some(release) = journal.releases(app)?.pop() else {
            return Err(DeployError::NothingToResume(format!(
                "no deploys of {app} are recorded in {}: there is nothing to resume",
                journal.location()
            )));
        };
        match release.status {
            ReleaseStatus::Interrupted => Ok((journal, release)),
            ReleaseStatus::Running => Err(DeployError::Busy(format!(
                "deploy #{} of {app} (v{}) is still running, in process {}: it is not interrupted, so \
                 there is nothing to resume (if that process is stuck, stop it with `kill {}` and run \
                 `cutover resume` again)",
                release.id, release.target.version, release.pid, release.pid
            ))),
            done => Err(DeployError::NothingToResume(format!(
                "the latest deploy of {app}, #{} (v{}), {}: there is nothing to resume (`cutover \
                 releases` lists the deploys)",
                release.id,
                release.target.version,
                done.as_str()
            ))),
        }
    }

    /// What a replay needs, checked: the plan and events the journal holds for `release`, and the very
    /// component that ran it (same BLAKE3); or why the release cannot be resumed (the inner error).
    async fn replayable(
        &self,
        journal: &Journal,
        release: &ReleaseRecord,
    ) -> Result<Result<(ResumeRecord, ResolvedStrategy), String>, DeployError> {
        if release.kind == ReleaseKind::Launch {
            return Ok(Err(
                "it was the app's first launch, which runs no strategy to resume; deploy again".into()
            ));
        }
        let Some(record) = journal.resume_record(release.id)? else {
            return Ok(Err("the journal holds no plan for it (an older cutover started it)".into()));
        };
        let reference =
            StrategyRef::parse(&record.strategy_ref, &std::env::current_dir().unwrap_or_default());
        let strategy = match resolve_strategy(self.runtime, &reference).await {
            Ok(strategy) => strategy,
            Err(e) => return Ok(Err(format!("its strategy cannot be loaded: {e}"))),
        };
        let hash = hex::encode(strategy.component.hash);
        if hash != release.strategy_hash {
            return Ok(Err(format!(
                "{} is not the component that ran it (BLAKE3 {} in the journal, {} now); replaying another \
                 component would not reproduce what was done: put the original back",
                strategy.label,
                short(&release.strategy_hash),
                short(&hash)
            )));
        }
        Ok(Ok((record, strategy)))
    }

    /// A recorder that goes on numbering the release's events where the journal stops, into the
    /// journal and this command's sink.
    // Every sink a fresh deploy's recorder has, plus where the interrupted run stopped.
    #[allow(clippy::too_many_arguments)]
    fn resumed_recorder(
        &self,
        journal: &Journal,
        release: &ReleaseRecord,
        record: &ResumeRecord,
        clock: cutover_runtime::HostClock,
        limit_bytes: u64,
        notifier: &Notifier,
        declared: Arc<crate::declared::Declared>,
    ) -> Recorder {
        let next_seq = record.events.last().map_or(0, |e| e.seq + 1);
        // The bound is the deploy's, so what the interrupted run journaled counts against it.
        let journaled: u64 = record
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::HostCall { .. } | EventKind::Intent { .. }))
            .map(|e| serde_json::to_string(e).map_or(0, |j| j.len() as u64))
            .sum();
        let sink: Arc<dyn EventSink> = Arc::new(Tee(vec![
            self.sink.clone(),
            declared,
            Arc::new(journal::JournalSink::new(
                journal.clone(),
                release.id,
                limit_bytes.saturating_sub(journaled),
            )),
            // Last: told of an event once the journal has it.
            Arc::new(notifier.clone()),
        ]));
        Recorder::starting_at(sink, clock, next_seq)
    }
}

/// Lease the fleet, waiting up to one TTL (and a little) for leases the dead process held to lapse.
async fn acquire_patiently(
    platform: Arc<dyn Platform>,
    ids: &[String],
    ttl: Duration,
    concurrency: usize,
) -> Result<lease::DeployLeases, cutover_core::OpError> {
    let give_up = std::time::Instant::now() + ttl + Duration::from_secs(2);
    loop {
        match lease::DeployLeases::acquire(platform.clone(), ids, ttl, concurrency).await {
            Ok(leases) => return Ok(leases),
            Err(e) if std::time::Instant::now() < give_up => {
                tracing::info!("waiting for the interrupted deploy's leases to lapse: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Why a release cannot be resumed, with the fleet as it is and what the user can do instead.
fn cannot_resume(release: &ReleaseRecord, why: String, fleet: &FleetSummary) -> DeployError {
    let on: Vec<String> = fleet.by_version.iter().rev().map(|(v, n)| format!("{n} on v{v}")).collect();
    let previous =
        release.previous.as_ref().map_or("the previous release".into(), |p| format!("v{}", p.version));
    DeployError::CannotResume(format!(
        "cannot resume deploy #{} of {} (v{}, {}): {why}\nthe fleet now: {} machine(s): {}; {} serving, {} \
         cordoned\nto go back to {previous}, run `cutover rollback`; to go forward, `cutover deploy` again",
        release.id,
        release.app,
        release.target.version,
        release.strategy,
        fleet.machines,
        if on.is_empty() { "none".into() } else { on.join(", ") },
        fleet.serving,
        fleet.cordoned,
    ))
}

/// The release command and why a resume does not run it again, when the journal shows it ended with 0.
fn skipped_because(events: &[cutover_core::events::Event]) -> Option<(String, String)> {
    let mut command = None;
    for e in events {
        match &e.kind {
            EventKind::ReleaseCommandStarted { command: c, .. } => command = Some(c.clone()),
            EventKind::ReleaseCommandFinished { error: None, .. } => {
                let why = "it already ran for this release and exited with 0 before the process died".into();
                return command.map(|c| (c, why));
            }
            _ => {}
        }
    }
    None
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
