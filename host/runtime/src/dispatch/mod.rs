//! The one dispatch point: every host call a strategy makes arrives here as a [`HostCall`], is run
//! against the platform, and is recorded with its [`HostReply`] and the host-clock time.
//!
//! Keeping every call in one enum is what makes the event log complete by construction: a new WIT
//! function cannot reach the platform without passing through [`Dispatcher::call`]. Batch calls fan
//! out here, bounded by `concurrency`, so every platform gets the same concurrency behaviour.
//!
//! What the dispatcher holds every call to, and how it records, sit in submodules of their own, which
//! know nothing of the dispatcher:
//!
//! - `bounds`: how large one call may be (machines named, metadata, weights, a log line);
//! - `creations`: how many machines one deploy may create (its blast radius);
//! - `log_budget`: how many log lines a strategy may write, on the host clock;
//! - `recorder`: numbering events and handing them to the run's sink ([`Recorder`]);
//! - `metrics`: the `metrics.*` calls (queries to the run's metrics source, the judge);
//! - `pipeline`: `machines.pipeline`, steps per machine under the concurrency slots and a window.

mod bounds;
mod counts;
pub mod creations;
mod log_budget;
mod metrics;
mod pipeline;
#[cfg(test)]
mod pipeline_tests;
mod recorder;
mod slots;

pub use bounds::{MAX_IDS_PER_CALL, truncate_log};
pub use recorder::Recorder;

use crate::clock::HostClock;
use crate::replay::{Replay, ReplayDiverged, Step};
use bounds::oversized;
use creations::Creations;
use cutover_core::Grants;
use cutover_core::contract::ParamValue;
use cutover_core::events::{EventKind, HostCall, HostReply};
use cutover_core::metrics::MetricsSource;
use cutover_core::{ErrorKind, Machine, OpError, Platform, StopSpec};
use futures::StreamExt;
use log_budget::LogBudget;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A channel through which an operator promotes a manual gate (`cutover promote`).
#[async_trait::async_trait]
pub trait PromotionGate: Send + Sync {
    /// Wait until `gate` is promoted, or fail with a timeout once `timeout` passes.
    async fn wait(&self, gate: &str, timeout: std::time::Duration) -> Result<(), OpError>;
}

/// Runs host calls against a platform and records them.
pub struct Dispatcher {
    platform: Arc<dyn Platform>,
    params: BTreeMap<String, ParamValue>,
    concurrency: usize,
    clock: HostClock,
    recorder: Recorder,
    /// Under the simulator: the clock as read when the strategy last waited. Virtual time cannot move
    /// while the strategy computes, so calls that never wait reuse it instead of reading the clock
    /// (which takes a lock) on the hot path.
    resumed_at_ms: AtomicU64,
    promotions: Option<Arc<dyn PromotionGate>>,
    grants: Grants,
    /// Whether the grants allow every operation (the usual case): calls that never wait then skip
    /// asking them, on the hot path.
    any_operation: bool,
    /// Process group and region of machines seen so far, when the grants restrict either.
    scopes: Mutex<HashMap<String, (String, String)>>,
    logs: Mutex<LogBudget>,
    /// Machines the run may still create (see [`creations`]).
    creations: Creations,
    /// Under `cutover resume`: the interrupted run's calls, answered from the journal until used up.
    replay: Option<Arc<Replay>>,
    /// Set when the replayed strategy made another call than the journal holds; the run stops. Read
    /// after every call, so it is a `OnceLock` (one atomic load when unset) rather than a mutex: the
    /// check costs next to nothing on the hot path of a run that is not replaying, and the first
    /// divergence is the one kept.
    diverged: OnceLock<ReplayDiverged>,
    /// Who answers metrics queries (none: they are `unsupported`).
    metrics: Option<Arc<dyn MetricsSource>>,
}

/// What a resumed run does with one call of its strategy (see [`Step`]).
enum Replayed {
    /// Answered without the platform: from the journal, or refused (an abort, a divergence).
    Answer(HostReply),
    /// The change under way when the previous process died.
    Reconcile,
    /// Sent to the platform, as in any run.
    Live,
}

impl Dispatcher {
    /// A dispatcher for one run: calls go to `platform`, at most `concurrency` at once within a batch
    /// call, and are recorded by `recorder` on `clock`. Replay, grants and promotions are added with
    /// the `with_` methods.
    pub fn new(
        platform: Arc<dyn Platform>,
        params: BTreeMap<String, ParamValue>,
        concurrency: usize,
        clock: HostClock,
        recorder: Recorder,
    ) -> Self {
        let resumed_at_ms = AtomicU64::new(clock.elapsed_ms());
        Self {
            platform,
            params,
            concurrency: concurrency.max(1),
            clock,
            recorder,
            resumed_at_ms,
            promotions: None,
            grants: Grants::default(),
            any_operation: true,
            scopes: Mutex::default(),
            logs: Mutex::new(LogBudget::new()),
            creations: Creations::new(u64::MAX),
            replay: None,
            diverged: OnceLock::new(),
            metrics: None,
        }
    }

    /// Answer `metrics.query` and `metrics.query-range` from `source`.
    pub fn with_metrics(mut self, source: Option<Arc<dyn MetricsSource>>) -> Self {
        self.metrics = source;
        self
    }

    /// Let the run create at most `bound` machines (see [`creations`]).
    pub fn with_creation_bound(mut self, bound: u64) -> Self {
        self.creations = Creations::new(bound);
        self
    }

    /// Machines the run has created so far, as counted against its bound.
    pub fn created(&self) -> u64 {
        self.creations.used()
    }

    /// Answer from `replay` until it is used up, then run live (see [`Replay`]).
    pub fn with_replay(mut self, replay: Option<Arc<Replay>>) -> Self {
        self.replay = replay;
        self
    }

    /// Why the replay stopped, once the replayed strategy strayed from the journal.
    #[inline]
    pub fn diverged(&self) -> Option<ReplayDiverged> {
        self.diverged.get().cloned()
    }

    /// What the replay makes of `call`; [`Replayed::Live`] when there is no replay (checked inline:
    /// that is every call of a run that is not a resume).
    #[inline]
    fn replayed(&self, call: &HostCall) -> Replayed {
        match &self.replay {
            None => Replayed::Live,
            Some(replay) => self.replay_step(replay, call),
        }
    }

    /// [`Self::replayed`] under a replay.
    fn replay_step(&self, replay: &Replay, call: &HostCall) -> Replayed {
        match replay.next(call) {
            Step::Live => Replayed::Live,
            Step::Reconcile => Replayed::Reconcile,
            Step::Answer(reply) => {
                self.creations.count(call, &reply);
                if self.grants.has_scope() {
                    self.note_scopes(call, &reply);
                }
                Replayed::Answer(reply)
            }
            Step::Abort(why) => {
                let reply = refused(call, OpError::new(ErrorKind::Conflict, why));
                let at_ms = self.clock.elapsed_ms();
                let event = EventKind::HostCall { call: call.clone(), reply: reply.clone(), took_ms: 0 };
                // A failure is kept by the recorder and stops the run at the sandbox.
                let _ = self.recorder.record_at(at_ms, event);
                Replayed::Answer(reply)
            }
            Step::Diverged(d) => {
                let refusal = OpError::new(ErrorKind::Invalid, d.to_string());
                // The run stops at this call, so there is never a second one to keep.
                let _ = self.diverged.set(d);
                Replayed::Answer(refused(call, refusal))
            }
        }
    }

    /// Refuse what `grants` does not allow (see [`Grants`]).
    pub fn with_grants(mut self, grants: Grants) -> Self {
        self.any_operation = grants.operations.is_none();
        self.grants = grants;
        self
    }

    /// Take promotions from `gate` when the platform has no promotion model of its own.
    pub fn with_promotions(mut self, gate: Option<Arc<dyn PromotionGate>>) -> Self {
        self.promotions = gate;
        self
    }

    /// Milliseconds since the run started, for a call that does not wait.
    #[inline]
    fn instant_ms(&self) -> u64 {
        if self.clock.is_simulated() {
            self.resumed_at_ms.load(Ordering::Relaxed)
        } else {
            self.clock.elapsed_ms()
        }
    }

    /// Run one call that may wait, and record it.
    pub async fn call(&self, call: HostCall) -> HostReply {
        let reconcile = match self.replayed(&call) {
            Replayed::Answer(reply) => return reply,
            Replayed::Reconcile => true,
            Replayed::Live => false,
        };
        // Once the record failed, nothing more reaches the platform: the run is stopping.
        if let Some(failure) = self.recorder.failure() {
            return refused(&call, unrecorded(&failure));
        }
        let started = self.clock.elapsed_ms();
        let refusal = oversized(&call)
            .or_else(|| self.grants.refuse_operation(&call))
            .or_else(|| self.past_blast_radius(&call));
        let reply = match refusal {
            Some(refusal) => refused(&call, refusal),
            // Its intent is journaled already, by the run that died.
            None if reconcile => self.reconcile(&call).await,
            None => {
                // On record before the platform is asked, so a crash cannot hide a change; a change
                // that cannot be put on record is not made.
                if call.mutates()
                    && let Err(failure) =
                        self.recorder.record_at(started, EventKind::Intent { call: call.clone() })
                {
                    return refused(&call, unrecorded(&failure));
                }
                self.run(&call).await
            }
        };
        if self.grants.has_scope() {
            self.note_scopes(&call, &reply);
        }
        let ended = self.clock.elapsed_ms();
        self.resumed_at_ms.store(ended, Ordering::Relaxed);
        // A failure is kept by the recorder and stops the run at the sandbox.
        let _ = self
            .recorder
            .record_at(ended, EventKind::HostCall { call, reply: reply.clone(), took_ms: ended - started });
        reply
    }

    /// The refusal of a creation when the run has none left: refused whole, before its intent is
    /// journaled, as the policy's other refusals are.
    fn past_blast_radius(&self, call: &HostCall) -> Option<OpError> {
        let HostCall::CloneFrom { sources, .. } = call else { return None };
        (!sources.is_empty() && self.creations.exhausted()).then(|| self.creations.refusal())
    }

    /// Why the run must stop, once its record failed (see [`Recorder::failure`]).
    #[inline]
    pub fn record_failure(&self) -> Option<cutover_core::events::SinkError> {
        self.recorder.failure()
    }

    /// `runtime.now`: [`Self::call_instant`] of [`HostCall::Now`], the call a strategy timing its
    /// steps makes in loops. Outside a replay (which answers from the journal, by the general path)
    /// its answer is known before it is recorded, so it is built once, in place, and neither the call
    /// nor the reply is moved through the general path or dropped. `Err`: a replay's answer that is
    /// not a time (a refusal), boxed: a `HostReply` in the `Result` made every caller copy its bytes on
    /// the way out, even for a time (about 24 instructions a call).
    #[inline]
    pub fn now(&self) -> Result<u64, Box<HostReply>> {
        if self.replay.is_some() {
            return match self.call_instant(HostCall::Now) {
                HostReply::Time(time) => Ok(time),
                other => Err(Box::new(other)),
            };
        }
        let at_ms = self.instant_ms();
        let time = self.clock.epoch_ms() + at_ms;
        // A failure is kept by the recorder and stops the run at the sandbox.
        let _ = self.recorder.record_now_at(at_ms, time);
        Ok(time)
    }

    /// Run one call that never waits, and record it. This is the hot path of chatty strategies.
    #[inline]
    pub fn call_instant(&self, call: HostCall) -> HostReply {
        // Only changes are ever under way, and no instant call changes anything: no reconcile here.
        if let Replayed::Answer(reply) = self.replayed(&call) {
            return reply;
        }
        let at_ms = self.instant_ms();
        if matches!(call, HostCall::Log { .. }) && !self.admit_log(at_ms) {
            return HostReply::Done;
        }
        let denied = if self.any_operation { None } else { self.grants.refuse_operation(&call) };
        let reply = match denied {
            Some(denied) => HostReply::Failed(denied),
            None => self.answer_at(&call, at_ms).unwrap_or_else(|| {
                HostReply::Failed(OpError::new(ErrorKind::Invalid, format!("internal: {call:?} may wait")))
            }),
        };
        // The reply goes into the event and comes back out of it: no clone on the hot path.
        let (_, reply) = self.recorder.record_call_at(at_ms, call, reply);
        reply
    }

    /// Whether a log line at `at_ms` fits the budget (see [`LogBudget`]). The first line kept after
    /// some were dropped is preceded by a note of how many.
    fn admit_log(&self, at_ms: u64) -> bool {
        let admitted = self.logs.lock().unwrap_or_else(|e| e.into_inner()).admit(at_ms);
        let Some(dropped) = admitted else { return false };
        if dropped > 0 {
            self.note_dropped_logs(at_ms, dropped);
        }
        true
    }

    /// Say how many log lines were dropped since the last note, if any (at the end of a run).
    pub fn flush_log_budget(&self) {
        let dropped = self.logs.lock().unwrap_or_else(|e| e.into_inner()).take_dropped();
        if dropped > 0 {
            self.note_dropped_logs(self.instant_ms(), dropped);
        }
    }

    /// Record the host's note that `dropped` log lines were dropped.
    fn note_dropped_logs(&self, at_ms: u64, dropped: u64) {
        let call = log_budget::dropped_note(dropped);
        let _ =
            self.recorder.record_at(at_ms, EventKind::HostCall { call, reply: HostReply::Done, took_ms: 0 });
    }

    /// The answer to a call that needs no waiting, or `None` for calls that go to the platform.
    fn answer_at_once(&self, call: &HostCall) -> Option<HostReply> {
        self.answer_at(call, self.instant_ms())
    }

    /// [`Self::answer_at_once`] with the clock already read (`at_ms` since the run started).
    #[inline]
    fn answer_at(&self, call: &HostCall, at_ms: u64) -> Option<HostReply> {
        Some(match call {
            HostCall::Capabilities => HostReply::Capabilities(self.platform.capabilities()),
            HostCall::Log { .. } | HostCall::Phase { .. } | HostCall::Progress { .. } => HostReply::Done,
            HostCall::Now => HostReply::Time(self.clock.epoch_ms() + at_ms),
            HostCall::Param { name } => HostReply::Param(self.params.get(name).cloned()),
            _ => return None,
        })
    }

    async fn run(&self, call: &HostCall) -> HostReply {
        let p = &*self.platform;
        match call {
            HostCall::List => one(p.list().await, HostReply::Machines),
            HostCall::Get { id } => one(p.get(id).await, |m| HostReply::Machine(Box::new(m))),
            HostCall::CloneFrom { sources, target, routable } => {
                // The first sources the bound has room for go to the platform; the others are denied.
                let held = self.creations.hold(sources);
                let held = &held;
                let results = self
                    .fan_out(sources, |id| async move {
                        if !held.contains(&id) {
                            return Err(self.creations.refusal());
                        }
                        self.in_scope(&id).await?;
                        p.clone_from(&id, target, *routable).await.map(|m| m.id)
                    })
                    .await;
                let made = results.iter().filter(|r| r.is_ok()).count();
                self.creations.give_back((held.len() - made) as u64);
                HostReply::Cloned(results)
            }
            HostCall::Update { ids, target } => {
                self.change(ids, |id| async move { p.update(&id, target).await }).await
            }
            HostCall::Start { ids } => self.change(ids, |id| async move { p.start(&id).await }).await,
            HostCall::Stop { ids, signal, timeout_ms } => {
                let how = StopSpec { signal: signal.clone(), timeout: Duration::from_millis(*timeout_ms) };
                let how = &how;
                self.change(ids, |id| async move { p.stop(&id, how).await }).await
            }
            HostCall::Destroy { ids } => self.change(ids, |id| async move { p.destroy(&id).await }).await,
            HostCall::WaitState { ids, state, timeout_ms } => {
                let deadline = deadline_in(*timeout_ms);
                self.batch(ids, |id| async move { p.wait_state(&id, *state, remaining(deadline)).await })
                    .await
            }
            HostCall::SetMetadata { id, key, value } => {
                let result = match self.in_scope(id).await {
                    Ok(()) => p.set_metadata(id, key, value).await,
                    Err(denied) => Err(denied),
                };
                one(result, |()| HostReply::Done)
            }
            HostCall::WaitHealthy { ids, timeout_ms } => {
                let deadline = deadline_in(*timeout_ms);
                self.batch(ids, |id| async move { p.wait_healthy(&id, remaining(deadline)).await }).await
            }
            HostCall::Checks { id } => one(p.checks(id).await, HostReply::Checks),
            HostCall::Cordon { ids } => self.change(ids, |id| async move { p.cordon(&id).await }).await,
            HostCall::Uncordon { ids } => self.change(ids, |id| async move { p.uncordon(&id).await }).await,
            HostCall::Connections { ids } if p.counts_together() => {
                HostReply::Counts(self.count_together(ids).await)
            }
            HostCall::Connections { ids } => {
                HostReply::Counts(self.fan_out(ids, |id| async move { p.connections(&id).await }).await)
            }
            HostCall::SetWeights { weights } => {
                let total: u32 = weights.iter().map(|w| u32::from(w.percent)).sum();
                // An empty list goes back to splitting by machine count.
                if !weights.is_empty() && total != 100 {
                    return HostReply::Failed(OpError::new(
                        ErrorKind::Invalid,
                        format!("weights add up to {total}%, expected 100%"),
                    ));
                }
                one(p.set_weights(weights).await, |()| HostReply::Done)
            }
            HostCall::Weights => one(p.weights().await, HostReply::Weights),
            HostCall::Stats { version, window_ms } => {
                one(p.stats(*version, Duration::from_millis(*window_ms)).await, HostReply::Stats)
            }
            HostCall::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                HostReply::Done
            }
            HostCall::AwaitPromotion { gate, timeout_ms } => {
                let timeout = Duration::from_millis(*timeout_ms);
                let answer = match p.await_promotion(gate, timeout).await {
                    Err(e) if e.kind == ErrorKind::Unsupported => match &self.promotions {
                        Some(channel) => channel.wait(gate, timeout).await,
                        None => Err(e),
                    },
                    other => other,
                };
                one(answer, |()| HostReply::Done)
            }
            HostCall::MetricsQuery { .. } | HostCall::MetricsRange { .. } | HostCall::Judge { .. } => {
                let now_ms = self.clock.now_ms();
                metrics::answer(self.metrics.as_deref(), call, now_ms)
                    .await
                    .unwrap_or(HostReply::Failed(OpError::new(ErrorKind::Invalid, "internal")))
            }
            HostCall::Pipeline { ids, steps, options } => {
                self.pipeline(ids, steps, *options, &HashMap::new()).await
            }
            HostCall::Capabilities
            | HostCall::Log { .. }
            | HostCall::Phase { .. }
            | HostCall::Progress { .. }
            | HostCall::Now
            | HostCall::Param { .. } => self
                .answer_at_once(call)
                .unwrap_or(HostReply::Failed(OpError::new(ErrorKind::Invalid, "internal"))),
        }
    }

    /// Finish the change the interrupted run had under way when its process died, from what the
    /// platform shows now: it may have happened in full, in part, or not at all. Machines already in
    /// the state the call asks for are left alone, and the clones it created are found (on the target
    /// release, named nowhere in the journal) and adopted rather than created twice. Calls that are
    /// harmless to repeat (start, stop, cordon, weights, metadata) are simply repeated.
    async fn reconcile(&self, call: &HostCall) -> HostReply {
        let Some(replay) = self.replay.clone() else { return self.run(call).await };
        let fleet = match cutover_core::list_with_retries(&*self.platform).await.map_err(|f| f.error) {
            Ok(fleet) => fleet,
            Err(e) => {
                let e = OpError::new(
                    e.kind,
                    format!(
                        "reading the fleet to finish `{}`, which the interrupted deploy had under way: {}",
                        call.operation(),
                        e.message
                    ),
                );
                return refused(call, e);
            }
        };
        let find = |id: &str| fleet.iter().find(|m| m.id == id);
        match call {
            HostCall::CloneFrom { sources, target, routable } => {
                let mut created: Vec<&Machine> =
                    fleet.iter().filter(|m| m.release == *target && !replay.knows(&m.id)).collect();
                let mut results: Vec<Option<Result<String, OpError>>> = vec![None; sources.len()];
                for (slot, source) in results.iter_mut().zip(sources) {
                    let Some(src) = find(source) else { continue };
                    if let Some(i) = created
                        .iter()
                        .position(|m| m.region == src.region && m.process_group == src.process_group)
                    {
                        let adopted = created.swap_remove(i);
                        tracing::info!(
                            "resume: {} is the clone of {source} the interrupted deploy made",
                            adopted.id
                        );
                        *slot = Some(Ok(adopted.id.clone()));
                    }
                }
                // The run that died held these; this one counts them as made.
                self.creations.adopt(results.iter().filter(|r| r.is_some()).count() as u64);
                let missing: Vec<String> = sources
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_none())
                    .map(|(s, _)| s.clone())
                    .collect();
                let mut fresh = match self
                    .run(&HostCall::CloneFrom {
                        sources: missing,
                        target: target.clone(),
                        routable: *routable,
                    })
                    .await
                {
                    HostReply::Cloned(r) => r.into_iter(),
                    other => return other,
                };
                let results = results
                    .into_iter()
                    .map(|r| {
                        r.or_else(|| fresh.next()).unwrap_or_else(|| {
                            Err(OpError::new(ErrorKind::Platform, "internal: a clone went missing"))
                        })
                    })
                    .collect();
                HostReply::Cloned(results)
            }
            HostCall::Update { ids, target } => {
                let todo =
                    ids.iter().filter(|id| find(id).is_none_or(|m| m.release != *target)).cloned().collect();
                self.run(&HostCall::Update { ids: todo, target: target.clone() }).await
            }
            HostCall::Destroy { ids } => {
                let todo = ids.iter().filter(|id| find(id).is_some()).cloned().collect();
                self.run(&HostCall::Destroy { ids: todo }).await
            }
            HostCall::Pipeline { ids, steps, options } => {
                // Steps are taken again but for what shows done: a machine gone that the steps
                // destroy, an update already made. Cordons, waits and stops are harmless to repeat.
                let destroys = steps.iter().any(|s| matches!(s, cutover_core::pipeline::Step::Destroy));
                let target = cutover_core::pipeline::update_target(steps);
                let skip = ids
                    .iter()
                    .filter_map(|id| match find(id) {
                        None if destroys => Some((id.clone(), pipeline::Skip::Whole)),
                        Some(m) if Some(&m.release) == target => Some((id.clone(), pipeline::Skip::Update)),
                        _ => None,
                    })
                    .collect();
                self.pipeline(ids, steps, *options, &skip).await
            }
            other => self.run(other).await,
        }
    }

    /// `Err(denied)` when the grants keep the strategy from changing machine `id` (its process group
    /// or region is outside them). Looks the machine up once if no reply has shown it yet.
    async fn in_scope(&self, id: &str) -> Result<(), OpError> {
        if !self.grants.has_scope() {
            return Ok(());
        }
        let known = self.scopes.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        let (group, region) = match known {
            Some(scope) => scope,
            None => {
                let m = self.platform.get(id).await?;
                let scope = (m.process_group, m.region);
                self.scopes.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), scope.clone());
                scope
            }
        };
        match self.grants.refuse_machine(id, &group, &region) {
            Some(denied) => Err(denied),
            None => Ok(()),
        }
    }

    /// Remember the scope of the machines a reply shows (clones take their source's).
    fn note_scopes(&self, call: &HostCall, reply: &HostReply) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        match (call, reply) {
            (_, HostReply::Machines(list)) => {
                for m in list {
                    scopes.insert(m.id.clone(), (m.process_group.clone(), m.region.clone()));
                }
            }
            (_, HostReply::Machine(m)) => {
                scopes.insert(m.id.clone(), (m.process_group.clone(), m.region.clone()));
            }
            (HostCall::CloneFrom { sources, .. }, HostReply::Cloned(results)) => {
                for (source, result) in sources.iter().zip(results) {
                    if let (Ok(id), Some(scope)) = (result, scopes.get(source).cloned()) {
                        scopes.insert(id.clone(), scope);
                    }
                }
            }
            _ => {}
        }
    }

    /// `traffic.connections` on a platform that counts many machines in one request: one request,
    /// each id listed twice refused as [`Dispatcher::fan_out`] refuses it.
    async fn count_together(&self, ids: &[String]) -> Vec<Result<u32, OpError>> {
        let mut seen = HashSet::with_capacity(ids.len());
        let first: Vec<bool> = ids.iter().map(|id| seen.insert(id.as_str())).collect();
        let unique: Vec<String> =
            ids.iter().zip(&first).filter(|(_, f)| **f).map(|(id, _)| id.clone()).collect();
        let mut counts = match self.platform.connections_of(&unique).await {
            Ok(counts) => counts.into_iter(),
            Err(e) => vec![Err(counts::per_machine(e)); unique.len()].into_iter(),
        };
        ids.iter()
            .zip(first)
            .map(|(id, first)| {
                if !first {
                    return Err(listed_twice(id));
                }
                counts.next().unwrap_or_else(|| {
                    Err(OpError::new(ErrorKind::Platform, format!("the platform did not count machine {id}")))
                })
            })
            .collect()
    }

    /// Run `op` for every id, at most `concurrency` at once; one result per id, in order.
    async fn fan_out<'a, T, F, Fut>(&self, ids: &'a [String], op: F) -> Vec<Result<T, OpError>>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, OpError>> + 'a,
    {
        let mut seen = HashSet::with_capacity(ids.len());
        // Owned items: closures over borrowed ones trip the higher-ranked lifetime check for Send futures.
        let items: Vec<(usize, String, bool)> =
            ids.iter().enumerate().map(|(i, id)| (i, id.clone(), !seen.insert(id.as_str()))).collect();
        let mut results: Vec<(usize, Result<T, OpError>)> = futures::stream::iter(items)
            .map(|(i, id, duplicate)| {
                let fut = (!duplicate).then(|| op(id.clone()));
                async move {
                    match fut {
                        Some(f) => (i, f.await),
                        None => (i, Err(listed_twice(&id))),
                    }
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    /// A batch call that changes machines: each is first held to the grants' scope (see
    /// [`Self::in_scope`]), then changed by `op`.
    async fn change<'a, F, Fut>(&'a self, ids: &'a [String], op: F) -> HostReply
    where
        F: Fn(String) -> Fut + 'a,
        Fut: Future<Output = Result<(), OpError>> + 'a,
    {
        let op = &op;
        self.batch(ids, |id| async move {
            self.in_scope(&id).await?;
            op(id).await
        })
        .await
    }

    /// A batch call: the reply lists the machines that failed.
    async fn batch<'a, F, Fut>(&self, ids: &'a [String], op: F) -> HostReply
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<(), OpError>> + 'a,
    {
        let results = self.fan_out(ids, op).await;
        HostReply::Batch(
            ids.iter().zip(results).filter_map(|(id, r)| r.err().map(|e| (id.clone(), e))).collect(),
        )
    }
}

/// The instant a wait of `timeout_ms` started now must end. A batch wait has one deadline for the
/// whole call: machines waited on in a later concurrency wave get what is left, not a fresh timeout.
fn deadline_in(timeout_ms: u64) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    // A guest may ask for any u64; past what an Instant holds, a century is forever enough.
    now.checked_add(Duration::from_millis(timeout_ms))
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn remaining(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}

/// The answer to a call that was not sent because the record failed (the strategy never sees it: the
/// sandbox stops the run as the call returns).
fn unrecorded(failure: &cutover_core::events::SinkError) -> OpError {
    OpError::new(ErrorKind::Platform, format!("not sent: {failure}"))
}

/// The reply to a call refused as a whole, in the shape the call answers in: a batch call's refusal
/// is every machine's.
fn refused(call: &HostCall, denied: OpError) -> HostReply {
    let Some(ids) = call.machine_ids() else { return HostReply::Failed(denied) };
    match call {
        HostCall::CloneFrom { .. } => HostReply::Cloned(ids.iter().map(|_| Err(denied.clone())).collect()),
        HostCall::Connections { .. } => HostReply::Counts(ids.iter().map(|_| Err(denied.clone())).collect()),
        HostCall::Pipeline { .. } => {
            HostReply::Pipeline(cutover_core::pipeline::PipelineOutcome::all_failed(ids, 0, &denied))
        }
        _ => HostReply::Batch(ids.iter().map(|id| (id.clone(), denied.clone())).collect()),
    }
}

fn one<T>(r: Result<T, OpError>, ok: impl FnOnce(T) -> HostReply) -> HostReply {
    match r {
        Ok(v) => ok(v),
        Err(e) => HostReply::Failed(e),
    }
}

/// The refusal of an id a batch call lists more than once (each machine is acted on once per call).
fn listed_twice(id: &str) -> OpError {
    OpError::new(ErrorKind::Invalid, format!("machine {id} is listed twice in one call"))
}
