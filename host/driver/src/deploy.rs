//! One deploy (or rollback) from a config to a report: the fleet read, the release numbered, every
//! machine leased, the release journaled, the strategy run in its sandbox, and the outcome recorded.

use crate::{
    DeployError, Notifier, OpenedPlatform, ResolvedStrategy, Target, lease, resolve_strategy, rollback,
};
use cutover_config::{Config, StrategyRef};
use cutover_core::contract::{DeployPlan, ParamValue};
use cutover_core::events::{
    DeployStart, EventKind, EventSink, FleetSummary, HostCall, HostReply, LogLevel, Outcome, Tee,
};
use cutover_core::metrics::MetricsSource;
use cutover_core::{EmptyApp, LaunchLog, LaunchPlan, Machine, OpError, Platform, Release, ReleaseWeight};
use cutover_journal::{self as journal, Journal};
use cutover_runtime::{
    HostClock, PromotionGate, Recorder, Replay, ReplayDiverged, RunContext, Runtime, RuntimeError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name a first launch is recorded under, in place of a strategy's.
pub const LAUNCH: &str = "launch";

/// How a deploy ended.
#[derive(Debug, Clone)]
pub struct DeployReport {
    /// Succeeded or failed.
    pub outcome: Outcome,
    /// Whether it returned the app to an earlier release.
    pub rollback: bool,
    /// Its number in the journal, when there is one.
    pub release_id: Option<i64>,
    /// The strategy's error or the sandbox's, when the deploy failed.
    pub error: Option<String>,
    /// The release it deployed.
    pub target: Release,
    /// The release most machines ran before it.
    pub previous: Option<Release>,
    /// The fleet at its end.
    pub fleet: FleetSummary,
    /// Time on the host clock (virtual under the simulator).
    pub duration: Duration,
    /// Real time the deploy took.
    pub wall: Duration,
}

/// What a run is for.
#[derive(Debug, Clone)]
pub enum Goal {
    /// A new release of `image`, numbered after every release seen so far.
    Deploy {
        /// The image to deploy.
        image: String,
    },
    /// Back to an earlier release: `to`, or the one the current release replaced.
    Rollback {
        /// The release version to return to.
        to: Option<u64>,
    },
}

/// Everything one deploy needs, resolved.
pub struct Deploy<'a> {
    /// The app's config, with the command line's `--strategy` and `--image` applied.
    pub config: &'a Config,
    /// Where it runs.
    pub target: &'a Target,
    /// The component runtime strategies run in.
    pub runtime: &'a Runtime,
    /// Where the deploy's events go (the terminal, `--json`); the journal gets them too.
    pub sink: Arc<dyn EventSink>,
}

/// The release most machines run (ties go to the newer one); `None` for an empty app.
pub fn current_release(machines: &[Machine]) -> Option<Release> {
    let mut counts: BTreeMap<(u64, &str), usize> = BTreeMap::new();
    for m in machines {
        *counts.entry((m.release.version, m.release.image.as_str())).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|((version, _), n)| (*n, *version))
        .map(|((version, image), _)| Release { version, image: image.to_string() })
}

/// The ids of the machines that are up or on their way up (not stopped, suspended, never started or
/// destroyed): a deploy that ends with one of them down on the target release has not succeeded.
pub(crate) fn running(machines: &[Machine]) -> BTreeSet<String> {
    use cutover_core::MachineState as S;
    machines
        .iter()
        .filter(|m| !matches!(m.state, S::Stopped | S::Suspended | S::Created | S::Destroyed | S::Destroying))
        .map(|m| m.id.clone())
        .collect()
}

/// The machines the platform could not reach the host of (Fly's `host_status` other than `ok`), as
/// "id (status)". The platform has only a partial view of them and cannot change them.
pub fn unreachable_hosts(machines: &[Machine]) -> Vec<String> {
    machines
        .iter()
        .filter_map(|m| cutover_machines_api::host_status_of(m).map(|status| format!("{} ({status})", m.id)))
        .collect()
}

/// Why a deploy refuses to start while some machines are on hosts the platform cannot reach.
pub(crate) fn unreachable_refusal(app: &str, unreachable: &[String]) -> String {
    format!(
        "{} machine(s) of {app} are on hosts Fly cannot reach: {}. Their config cannot be read in full and \
         they cannot be updated or stopped, so cutover changes nothing rather than leave them behind on the \
         old release. Wait for the hosts to come back (`fly machine status ID` shows them), or destroy \
         those machines (`fly machine destroy --force ID`) and deploy again",
        unreachable.len(),
        unreachable.join(", ")
    )
}

/// List machines, retrying transient platform errors (the driver's own reads must not fail a deploy).
pub(crate) async fn list_with_retries(platform: &dyn Platform) -> Result<Vec<Machine>, DeployError> {
    cutover_core::list_with_retries(platform).await.map_err(|f| {
        let app = platform.app();
        match f.exhausted {
            true => DeployError::platform_in(
                format_args!("listing machines of {app} failed {} times", cutover_core::LIST_ATTEMPTS),
                &f.error,
            ),
            false => DeployError::platform_in(format_args!("listing machines of {app}"), &f.error),
        }
    })
}

/// The split of new connections a deploy left set, for a summary of the fleet now
/// ([`FleetSummary::weighed`]): empty where the platform has no weights, and where they cannot be read
/// (then machines count as serving by their own state alone).
pub(crate) async fn weights_now(platform: &dyn Platform) -> Vec<ReleaseWeight> {
    match platform.capabilities().weights {
        true => platform.weights().await.unwrap_or_default(),
        false => Vec::new(),
    }
}

/// The release a goal deploys. A new deploy gets the next version neither the journal nor the fleet
/// has seen (versions are never reused); a rollback, the release [`rollback::pick`] chooses.
pub(crate) fn target_release(
    goal: Goal,
    journal: Option<&Journal>,
    app: &str,
    machines: &[Machine],
    current: Option<&Release>,
) -> Result<Release, DeployError> {
    Ok(match goal {
        Goal::Deploy { image } => {
            let seen = match journal {
                Some(j) => j.max_version(app)?,
                None => 0,
            };
            let on_fleet = machines.iter().map(|m| m.release.version).max().unwrap_or(0);
            Release { version: seen.max(on_fleet) + 1, image }
        }
        Goal::Rollback { to } => {
            let records = match journal {
                Some(j) => j.releases(app)?,
                None => vec![],
            };
            rollback::pick(app, &records, current, to).map_err(DeployError::NoRollbackTarget)?
        }
    })
}

/// Takes `cutover promote` for one release from the journal.
pub(crate) struct JournalGate {
    pub(crate) journal: Journal,
    pub(crate) release_id: i64,
    /// Told when the deploy starts waiting, so a person hears of the gate.
    pub(crate) notify: Notifier,
}

#[async_trait::async_trait]
impl PromotionGate for JournalGate {
    async fn wait(&self, gate: &str, timeout: Duration) -> Result<(), OpError> {
        self.notify.gate(gate);
        self.journal.await_promotion(self.release_id, gate, timeout).await
    }
}

/// A launch's progress, recorded as the host notes of a deploy (phase, log lines, progress).
struct LaunchNotes<'a>(&'a Recorder);

impl LaunchNotes<'_> {
    fn note(&self, call: HostCall) {
        // Notes only: the launch itself is not a journaled change.
        let _ = self.0.record(EventKind::HostCall { call, reply: HostReply::Done, took_ms: 0 });
    }
}

impl LaunchLog for LaunchNotes<'_> {
    fn phase(&self, name: &str) {
        self.note(HostCall::Phase { name: name.into() });
    }
    fn info(&self, message: String) {
        self.note(HostCall::Log { level: LogLevel::Info, message });
    }
    fn progress(&self, done: u32, total: u32) {
        self.note(HostCall::Progress { done, total });
    }
}

/// What a deploy found and decided before changing anything.
struct Prepared {
    machines: Vec<Machine>,
    previous: Option<Release>,
    target: Release,
    plan: DeployPlan,
    /// The app has no machines and the platform launches them itself: no strategy runs.
    launch: bool,
    rollback: bool,
}

impl Deploy<'_> {
    /// Deploy a new release. `Ok` carries the report for both outcomes; `Err` means the deploy never
    /// started (bad input, unreachable platform) and nothing was changed.
    pub async fn run(&self) -> Result<DeployReport, DeployError> {
        self.run_goal(Goal::Deploy { image: self.image()? }).await
    }

    /// The image to deploy: `--image`, else `[build] image`.
    pub fn image(&self) -> Result<String, DeployError> {
        self.config.image.clone().ok_or_else(|| DeployError::NoImage { config: self.config.path.clone() })
    }

    /// Return the app to an earlier release with the configured strategy (which switches back to
    /// retained machines when it kept them, or deploys the earlier image).
    /// After a crash (the latest deploy interrupted), the deploy is first undone by its own strategy.
    pub async fn rollback(&self, to: Option<u64>) -> Result<DeployReport, DeployError> {
        if to.is_none()
            && let Some(report) = self.roll_back_interrupted().await?
        {
            return Ok(report);
        }
        self.run_goal(Goal::Rollback { to }).await
    }

    pub(crate) async fn run_goal(&self, goal: Goal) -> Result<DeployReport, DeployError> {
        let config = self.config;
        let strategy = resolve_strategy(self.runtime, &config.strategy).await?;
        let (params, warnings) = config.strategy_params(&strategy.info.params, &strategy.info.name)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let opened = self.target.open(config).await?;
        self.run_on(&strategy, params, goal, opened).await
    }

    /// Run a resolved strategy on an opened platform.
    pub(crate) async fn run_on(
        &self,
        strategy: &ResolvedStrategy,
        params: BTreeMap<String, ParamValue>,
        goal: Goal,
        opened: OpenedPlatform,
    ) -> Result<DeployReport, DeployError> {
        let wall = Instant::now();
        let clock = self.target.host_clock();
        let journal = self.target.state().map(|s| s.journal()).transpose()?;
        let platform = opened.platform.clone();
        let prepared = self.prepare(&*platform, params, goal, journal.as_ref()).await?;

        // Every machine is ours before anything changes; a deploy already running is refused here.
        let leases = if prepared.launch {
            lease::DeployLeases::none(platform.clone())
        } else {
            let ids: Vec<String> = prepared.machines.iter().map(|m| m.id.clone()).collect();
            lease::DeployLeases::acquire(
                platform.clone(),
                &ids,
                self.config.cutover.lease_ttl,
                opened.concurrency,
            )
            .await
            .map_err(|e| DeployError::Busy(e.to_string()))?
        };
        // The release is on record, and the platform keeps what it changes, before anything changes.
        let recorded = self.begin_record(journal.as_ref(), strategy, &*platform, &prepared).and_then(|id| {
            platform.begin_changes().map_err(DeployError::platform)?;
            Ok(id)
        });
        let release_id = match recorded {
            Ok(id) => id,
            Err(e) => {
                leases.release().await;
                return Err(e);
            }
        };
        let notifier = Notifier::start(&self.config.cutover.notify, &self.config.app, release_id);
        let declared = Arc::new(crate::declared::Declared::default());
        // The notifier is the last sink: an event reaches it after the journal has it.
        let sink: Arc<dyn EventSink> = match (&journal, release_id) {
            (Some(j), Some(id)) => Arc::new(Tee(vec![
                self.sink.clone(),
                declared.clone(),
                Arc::new(journal::JournalSink::new(
                    j.clone(),
                    id,
                    self.config.cutover.sandbox_for(&strategy.reference).0.journal_bytes,
                )),
                Arc::new(notifier.clone()),
            ])),
            _ => Arc::new(Tee(vec![self.sink.clone(), Arc::new(notifier.clone())])),
        };
        let recorder = Recorder::new(sink, clock);
        // A failure is kept by the recorder: nothing is changed after it (below, and in the dispatcher).
        let _ = recorder.record(EventKind::DeployStarted(Box::new(DeployStart {
            app: self.config.app.clone(),
            platform: platform.name().to_string(),
            strategy: if prepared.launch { LAUNCH.into() } else { strategy.info.name.clone() },
            target: prepared.target.clone(),
            previous: prepared.previous.clone(),
            machines: prepared.machines.len(),
            rollback: prepared.rollback,
        })));

        // Nothing runs past a journal that already refused an event. The release command runs on the
        // new release before anything changes; a rollback returns to code whose migrations already
        // ran, so it runs none.
        let released = match (recorder.failure(), prepared.rollback) {
            (Some(failure), _) => Some(format!("nothing was changed: {failure}")),
            (None, true) => None,
            (None, false) => {
                self.release_command(&*platform, &recorder, clock, &prepared.target, false).await
            }
        };
        let error = if let Some(e) = released {
            Some(e)
        } else if prepared.launch {
            let plan = self.launch_plan(&prepared.target);
            platform.launch(&plan, &LaunchNotes(&recorder)).await.err().map(|e| e.message)
        } else {
            let promotions = match (&journal, release_id) {
                (Some(j), Some(id)) => Some(Arc::new(JournalGate {
                    journal: j.clone(),
                    release_id: id,
                    notify: notifier.clone(),
                }) as Arc<dyn PromotionGate>),
                _ => None,
            };
            let run = StrategyRun {
                platform: platform.clone(),
                concurrency: opened.concurrency,
                clock,
                recorder: recorder.clone(),
                promotions,
                replay: None,
                metrics: opened.metrics.clone(),
                fleet_at_start: prepared.machines.len(),
            };
            // Without a replay nothing can stray from one.
            self.run_strategy(strategy, &prepared.plan, run).await.unwrap_or_else(|d| Some(d.to_string()))
        };
        Ok(self
            .conclude(Ending {
                error,
                leases,
                platform,
                journal,
                release_id,
                recorder,
                declared,
                clock,
                wall,
                rollback: prepared.rollback,
                running_before: running(&prepared.machines),
                target: prepared.target,
                previous: prepared.previous,
                notify: notifier,
            })
            .await)
    }

    /// Read the fleet, number the release, decide what an empty app gets, and write the plan.
    async fn prepare(
        &self,
        platform: &dyn Platform,
        params: BTreeMap<String, ParamValue>,
        goal: Goal,
        journal: Option<&Journal>,
    ) -> Result<Prepared, DeployError> {
        let config = self.config;
        let machines = list_with_retries(platform).await?;
        let unreachable = unreachable_hosts(&machines);
        if !unreachable.is_empty() {
            return Err(DeployError::Platform {
                kind: cutover_core::ErrorKind::Platform,
                message: unreachable_refusal(&config.app, &unreachable),
            });
        }
        let previous = current_release(&machines);
        let rollback = matches!(goal, Goal::Rollback { .. });
        let target = target_release(goal, journal, &config.app, &machines, previous.as_ref())?;
        // An app with no machines yet: a strategy has nothing to replace, so the platform decides.
        let launch = match (machines.is_empty() && !rollback).then(|| platform.empty_app()) {
            Some(EmptyApp::Launch) => true,
            Some(EmptyApp::Refuse(why)) => return Err(DeployError::NotLaunched(why)),
            Some(EmptyApp::RunStrategy) | None => false,
        };
        let mut groups: Vec<String> = machines.iter().map(|m| m.process_group.clone()).collect();
        groups.extend(config.process_groups.iter().cloned());
        groups.sort();
        groups.dedup();
        let plan = DeployPlan {
            app: config.app.clone(),
            target: target.clone(),
            previous: previous.clone(),
            process_groups: groups,
            max_unavailable: config.max_unavailable,
            wait_timeout_ms: config.wait_timeout.as_millis() as u64,
            kill_signal: config.kill_signal.clone(),
            kill_timeout_ms: config.kill_timeout.as_millis() as u64,
            params,
        };
        Ok(Prepared { machines, previous, target, plan, launch, rollback })
    }

    /// Journal the release before anything changes (a second deploy of the app is refused here).
    fn begin_record(
        &self,
        journal: Option<&Journal>,
        strategy: &ResolvedStrategy,
        platform: &dyn Platform,
        p: &Prepared,
    ) -> Result<Option<i64>, DeployError> {
        let Some(j) = journal else { return Ok(None) };
        let id = j.begin(&journal::NewRelease {
            app: &self.config.app,
            kind: match (p.rollback, p.launch) {
                (true, _) => journal::ReleaseKind::Rollback,
                (false, true) => journal::ReleaseKind::Launch,
                (false, false) => journal::ReleaseKind::Deploy,
            },
            target: &p.target,
            previous: p.previous.as_ref(),
            strategy: if p.launch { LAUNCH } else { &strategy.info.name },
            strategy_hash: &hex::encode(strategy.component.hash),
            params: serde_json::to_value(&p.plan.params).unwrap_or_default(),
            platform: platform.name(),
            plan: (!p.launch).then_some(&p.plan),
            strategy_ref: Some(&match &strategy.reference {
                // Absolute, so `cutover resume` finds it from any folder.
                StrategyRef::File(path) => {
                    std::fs::canonicalize(path).unwrap_or(path.clone()).display().to_string()
                }
                builtin => builtin.to_string(),
            }),
        })?;
        Ok(Some(id))
    }

    /// The app's first machines, as `[cutover.local]` and `[processes]` describe them.
    fn launch_plan(&self, release: &Release) -> LaunchPlan {
        let config = self.config;
        LaunchPlan {
            app: config.app.clone(),
            release: release.clone(),
            groups: config.process_groups.clone(),
            per_group: config.cutover.local.machines,
            regions: config.cutover.local.regions.clone(),
            wait_timeout: config.wait_timeout,
        }
    }

    /// Run a strategy on `plan` in its sandbox, under this config's policy for it (seeded by the target
    /// release, so a replay gets the same randomness). `Ok`: the deploy's error if it failed; `Err`: a
    /// replayed strategy strayed from its journal, and nothing was changed.
    pub(crate) async fn run_strategy(
        &self,
        strategy: &ResolvedStrategy,
        plan: &DeployPlan,
        run: StrategyRun,
    ) -> Result<Option<String>, ReplayDiverged> {
        let (limits, grants) = self.config.cutover.sandbox_for(&strategy.reference);
        let ctx = RunContext {
            platform: run.platform,
            limits,
            grants,
            concurrency: run.concurrency,
            clock: run.clock,
            recorder: run.recorder,
            seed: plan.target.version,
            promotions: run.promotions,
            replay: run.replay,
            metrics: run.metrics,
            creation_bound: limits.creation_bound(run.fleet_at_start, plan.process_groups.len()),
        };
        let versions: Vec<u64> =
            std::iter::once(plan.target.version).chain(plan.previous.as_ref().map(|p| p.version)).collect();
        let sampler =
            crate::sample::Sampler::start(ctx.platform.clone(), ctx.clock, ctx.recorder.clone(), versions);
        let ran = self.runtime.deploy(&strategy.component, plan, ctx).await;
        sampler.stop().await;
        match ran {
            Ok(Ok(())) => Ok(None),
            Ok(Err(e)) => Ok(Some(format!("strategy {} reported: {e}", strategy.info.name))),
            Err(RuntimeError::Diverged(d)) => Err(d),
            Err(e) => Ok(Some(e.to_string())),
        }
    }

    /// Close a deploy whose strategy has returned: verify a success on the fleet itself
    /// ([`crate::verify`]), give the leases back, record and journal the outcome with the fleet as it
    /// is now, and let the platform keep its state for the next run.
    pub(crate) async fn conclude(&self, end: Ending) -> DeployReport {
        let Ending {
            mut error,
            leases,
            platform,
            journal,
            release_id,
            recorder,
            declared,
            clock,
            wall,
            rollback,
            running_before,
            target,
            previous,
            notify,
        } = end;
        if error.is_none()
            && let Err(why) =
                crate::verify::verify(&*platform, &target, &running_before, self.config.wait_timeout).await
        {
            error = Some(why);
        }
        let unreleased = leases.release().await;
        if unreleased > 0 {
            tracing::warn!(
                "{unreleased} lease(s) could not be released; they expire within {}",
                cutover_core::duration::display(self.config.cutover.lease_ttl)
            );
        }
        let outcome = if error.is_none() { Outcome::Succeeded } else { Outcome::Failed };
        let listed_after = list_with_retries(&*platform).await;
        let listed = listed_after.is_ok();
        let after = listed_after.unwrap_or_default();
        let duration = clock.elapsed();
        // A deploy can end with the split still set (clearing it failed): a release it gives no share
        // takes nothing, so its machines are not counted serving.
        let fleet = FleetSummary::weighed(&after, &weights_now(&*platform).await);
        let _ = recorder.record(EventKind::DeployFinished {
            outcome,
            error: error.clone(),
            duration_ms: duration.as_millis() as u64,
            fleet: fleet.clone(),
        });
        if let Err(e) = platform.end_run() {
            tracing::error!("{}", e.message);
        }
        if let (Some(j), Some(id)) = (&journal, release_id)
            && let Err(e) = j.finish(id, error.is_none(), error.as_deref(), duration)
        {
            tracing::error!("the outcome of release #{id} was not journaled: {e}");
        }
        // What the strategy tagged as left to do (clean-up the platform refused past its budget) is
        // part of the release's record, beside its outcome; so is what it declared left over when
        // the platform would not take the tag either (then the record is all there is).
        let present = |id: &str| after.iter().any(|m| m.id == id);
        let left = declared.merge(
            crate::status::leftovers(&after),
            if listed { Some(&present as &dyn Fn(&str) -> bool) } else { None },
        );
        if let (Some(j), Some(id), false) = (&journal, release_id, left.is_empty())
            && let Err(e) = j.leftovers(id, &left)
        {
            tracing::error!("the leftovers of release #{id} were not journaled: {e}");
        }
        notify.leftovers(&left);
        // At most notify::FLUSH for notifications still queued; the outcome is already decided.
        notify.finish();
        DeployReport {
            outcome,
            rollback,
            release_id,
            error,
            target,
            previous,
            fleet,
            duration,
            wall: wall.elapsed(),
        }
    }
}

/// Where and how [`Deploy::run_strategy`] runs a strategy.
pub(crate) struct StrategyRun {
    pub(crate) platform: Arc<dyn Platform>,
    pub(crate) concurrency: usize,
    pub(crate) clock: HostClock,
    pub(crate) recorder: Recorder,
    pub(crate) promotions: Option<Arc<dyn PromotionGate>>,
    pub(crate) replay: Option<Arc<Replay>>,
    pub(crate) metrics: Option<Arc<dyn MetricsSource>>,
    /// Machines in the app when the deploy started (not resumed): with the plan's process groups, the
    /// blast radius ([`cutover_core::Limits::creation_bound`]).
    pub(crate) fleet_at_start: usize,
}

/// What [`Deploy::conclude`] needs of a deploy whose strategy has returned.
pub(crate) struct Ending {
    /// The strategy's or the sandbox's error, if it failed.
    pub(crate) error: Option<String>,
    pub(crate) leases: lease::DeployLeases,
    pub(crate) platform: Arc<dyn Platform>,
    pub(crate) journal: Option<Journal>,
    pub(crate) release_id: Option<i64>,
    pub(crate) recorder: Recorder,
    /// The leftovers the strategy declared (its tagging calls, landed or not).
    pub(crate) declared: Arc<crate::declared::Declared>,
    pub(crate) clock: HostClock,
    pub(crate) wall: Instant,
    pub(crate) rollback: bool,
    /// The machines that were up before the deploy ([`running`]): on the target release at its end,
    /// they must be up again.
    pub(crate) running_before: BTreeSet<String>,
    pub(crate) target: Release,
    pub(crate) previous: Option<Release>,
    /// Told of the leftovers, then given a bounded moment to send what is queued.
    pub(crate) notify: Notifier,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::MachineState;

    fn m(version: u64, image: &str) -> Machine {
        Machine {
            id: String::new(),
            name: String::new(),
            region: "ams".into(),
            process_group: "app".into(),
            state: MachineState::Started,
            release: Release { version, image: image.into() },
            cordoned: false,
            checks: vec![],
            volumes: vec![],
            metadata: vec![],
        }
    }

    #[test]
    fn current_release_is_the_majority() {
        let ms = vec![m(1, "a"), m(2, "b"), m(2, "b")];
        assert_eq!(current_release(&ms), Some(Release { version: 2, image: "b".into() }));
        assert_eq!(current_release(&[]), None);
    }
}
