//! The deploy's event stream: every host call a strategy makes, plus the deploy's start and end.
//!
//! The runtime's dispatch point appends one [`Event`] per call, stamped with the host clock (virtual
//! under the simulator). Renderers (human progress, `--json`) subscribe through [`EventSink`]; the
//! journal keeps the same records, and replay answers a resumed strategy from them.

use crate::contract::ParamValue;
use crate::error::OpError;
use crate::judge::{JudgeOptions, Verdict};
use crate::machine::{Check, Machine, MachineState, Release};
use crate::metrics::Series;
use crate::pipeline::{PipelineOptions, PipelineOutcome, Step};
use crate::platform::{Capabilities, ReleaseWeight, TrafficStats};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// One call a strategy made to the host, with its arguments: the unit of the event log, of the
/// journal, of replay and of the sandbox policy.
///
/// Each variant mirrors one import of `wit/strategy.wit`, and its serde tag is the contract's name
/// for it (`machines.clone-from`), so the event log reads in the contract's vocabulary whatever WIT
/// version the strategy was built for. Times are milliseconds throughout, as in the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum HostCall {
    /// `machines.list`: every machine of the app (every process group, every region, every state but
    /// destroyed).
    #[serde(rename = "machines.list")]
    List,
    /// `machines.get`: one machine.
    #[serde(rename = "machines.get")]
    Get {
        /// The machine's platform id.
        id: String,
    },
    /// `machines.clone-from`: one new machine per source, like the source but running `target`, and
    /// started.
    #[serde(rename = "machines.clone-from")]
    CloneFrom {
        /// The machines to copy (region, process group, size, services), one new machine each.
        sources: Vec<String>,
        /// The release the new machines run.
        target: Release,
        /// `false`: the new machines are created cordoned (the "green" of a blue/green deploy) and
        /// take no traffic until `traffic.uncordon`.
        routable: bool,
    },
    /// `machines.update`: move machines to `target` in place (a started machine is stopped, replaced
    /// and started again; a stopped one is updated and stays stopped).
    #[serde(rename = "machines.update")]
    Update {
        /// The machines to update.
        ids: Vec<String>,
        /// The release they move to.
        target: Release,
    },
    /// `machines.start`: start stopped machines.
    #[serde(rename = "machines.start")]
    Start {
        /// The machines to start.
        ids: Vec<String>,
    },
    /// `machines.stop`: send `signal`, wait up to `timeout_ms`, then kill.
    #[serde(rename = "machines.stop")]
    Stop {
        /// The machines to stop.
        ids: Vec<String>,
        /// The signal sent first, by name (e.g. "SIGINT", fly.toml's `kill_signal`).
        signal: String,
        /// Milliseconds each machine has to exit after the signal before it is killed.
        timeout_ms: u64,
    },
    /// `machines.destroy`: destroy machines, killing them if they still run; an already destroyed
    /// machine is not an error.
    #[serde(rename = "machines.destroy")]
    Destroy {
        /// The machines to destroy.
        ids: Vec<String>,
    },
    /// `machines.wait-state`: wait until every machine is in `state`, or `timeout_ms` passes.
    #[serde(rename = "machines.wait-state")]
    WaitState {
        /// The machines to wait for.
        ids: Vec<String>,
        /// The state each must reach.
        state: MachineState,
        /// Milliseconds for the whole call, however many machines it names.
        timeout_ms: u64,
    },
    /// `machines.set-metadata`: set one metadata key on a machine (e.g. a deployment tag).
    #[serde(rename = "machines.set-metadata")]
    SetMetadata {
        /// The machine.
        id: String,
        /// The key to set.
        key: String,
        /// Its new value.
        value: String,
    },
    /// `health.wait-healthy`: wait until every check of every machine is passing.
    #[serde(rename = "health.wait-healthy")]
    WaitHealthy {
        /// The machines to wait for.
        ids: Vec<String>,
        /// Milliseconds for the whole call, however many machines it names.
        timeout_ms: u64,
    },
    /// `health.checks`: the current checks of one machine.
    #[serde(rename = "health.checks")]
    Checks {
        /// The machine.
        id: String,
    },
    /// `traffic.capabilities`: what the platform's traffic layer can do.
    #[serde(rename = "traffic.capabilities")]
    Capabilities,
    /// `traffic.cordon`: take machines out of rotation (no new connections; existing ones continue).
    #[serde(rename = "traffic.cordon")]
    Cordon {
        /// The machines to cordon.
        ids: Vec<String>,
    },
    /// `traffic.uncordon`: put machines (back) into rotation.
    #[serde(rename = "traffic.uncordon")]
    Uncordon {
        /// The machines to uncordon.
        ids: Vec<String>,
    },
    /// `traffic.connections`: open connections to each machine right now.
    #[serde(rename = "traffic.connections")]
    Connections {
        /// The machines to count, in the order the reply answers.
        ids: Vec<String>,
    },
    /// `traffic.set-weights`: split new connections between releases.
    #[serde(rename = "traffic.set-weights")]
    SetWeights {
        /// The split; percentages add up to 100, and an empty list goes back to splitting by machine
        /// count.
        weights: Vec<ReleaseWeight>,
    },
    /// `traffic.weights`: the current split (empty: by machine count).
    #[serde(rename = "traffic.weights")]
    Weights,
    /// `traffic.stats`: requests, errors and latency of one release over a recent window.
    #[serde(rename = "traffic.stats")]
    Stats {
        /// The release's version.
        version: u64,
        /// How far back to look, in milliseconds.
        window_ms: u64,
    },
    /// `runtime.log`: a line for the deploy log, shown to the user and kept in the event log.
    #[serde(rename = "runtime.log")]
    Log {
        /// How much the line matters.
        level: LogLevel,
        /// The line (the host cuts an over-long one).
        message: String,
    },
    /// `runtime.phase`: a named phase of the deploy begins (e.g. "batch 2/5", "switch traffic").
    #[serde(rename = "runtime.phase")]
    Phase {
        /// The phase's name, as the user sees it.
        name: String,
    },
    /// `runtime.progress`: progress within the current phase.
    #[serde(rename = "runtime.progress")]
    Progress {
        /// Steps done so far.
        done: u32,
        /// Steps the phase has in all.
        total: u32,
    },
    /// `runtime.now`: the host's clock (virtual under the simulator).
    #[serde(rename = "runtime.now")]
    Now,
    /// `runtime.sleep`: sleep on the host's clock (instant in real time under the simulator).
    #[serde(rename = "runtime.sleep")]
    Sleep {
        /// How long, in milliseconds.
        ms: u64,
    },
    /// `runtime.param`: one parameter of this deploy (config value or `describe()` default).
    #[serde(rename = "runtime.param")]
    Param {
        /// The parameter's name.
        name: String,
    },
    /// `runtime.await-promotion`: wait at a manual gate until someone runs `cutover promote`.
    #[serde(rename = "runtime.await-promotion")]
    AwaitPromotion {
        /// The gate's name, as `cutover promote` names it.
        gate: String,
        /// Milliseconds to wait before the call fails with `timeout`.
        timeout_ms: u64,
    },
    /// `metrics.query` (0.2): a PromQL instant query, performed by the host.
    #[serde(rename = "metrics.query")]
    MetricsQuery {
        /// The PromQL expression.
        promql: String,
        /// When, in ms since the Unix epoch; `None`: now on the host's clock.
        time_ms: Option<u64>,
    },
    /// `metrics.query-range` (0.2): a PromQL range query, performed by the host.
    #[serde(rename = "metrics.query-range")]
    MetricsRange {
        /// The PromQL expression.
        promql: String,
        /// First point, ms since the Unix epoch.
        start_ms: u64,
        /// Last point, ms since the Unix epoch.
        end_ms: u64,
        /// Distance between points, ms.
        step_ms: u64,
    },
    /// `metrics.judge` (0.2): canary samples against baseline samples (see [`crate::judge`]).
    #[serde(rename = "metrics.judge")]
    Judge {
        /// The canary's values.
        canary: Vec<f64>,
        /// The baseline's values.
        baseline: Vec<f64>,
        /// Confidence, which way is harm, tolerance.
        options: JudgeOptions,
    },
    /// `machines.pipeline` (0.2): `steps` on every machine, each going on as soon as its own step is
    /// done (see [`crate::pipeline`]).
    #[serde(rename = "machines.pipeline")]
    Pipeline {
        /// The machines, in the order they enter.
        ids: Vec<String>,
        /// What each machine goes through, in order.
        steps: Vec<Step>,
        /// Window and failure handling.
        options: PipelineOptions,
    },
}

impl HostCall {
    /// Whether this call may change the fleet (as opposed to reading it or talking to the UI).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Self::CloneFrom { .. }
                | Self::Update { .. }
                | Self::Start { .. }
                | Self::Stop { .. }
                | Self::Destroy { .. }
                | Self::SetMetadata { .. }
                | Self::Cordon { .. }
                | Self::Uncordon { .. }
                | Self::SetWeights { .. }
                | Self::Pipeline { .. }
        )
    }

    /// The contract's name for this call, as the event log spells it (`machines.destroy`).
    pub fn operation(&self) -> &'static str {
        match self {
            Self::List => "machines.list",
            Self::Get { .. } => "machines.get",
            Self::CloneFrom { .. } => "machines.clone-from",
            Self::Update { .. } => "machines.update",
            Self::Start { .. } => "machines.start",
            Self::Stop { .. } => "machines.stop",
            Self::Destroy { .. } => "machines.destroy",
            Self::WaitState { .. } => "machines.wait-state",
            Self::SetMetadata { .. } => "machines.set-metadata",
            Self::WaitHealthy { .. } => "health.wait-healthy",
            Self::Checks { .. } => "health.checks",
            Self::Capabilities => "traffic.capabilities",
            Self::Cordon { .. } => "traffic.cordon",
            Self::Uncordon { .. } => "traffic.uncordon",
            Self::Connections { .. } => "traffic.connections",
            Self::SetWeights { .. } => "traffic.set-weights",
            Self::Weights => "traffic.weights",
            Self::Stats { .. } => "traffic.stats",
            Self::Log { .. } => "runtime.log",
            Self::Phase { .. } => "runtime.phase",
            Self::Progress { .. } => "runtime.progress",
            Self::Now => "runtime.now",
            Self::Sleep { .. } => "runtime.sleep",
            Self::Param { .. } => "runtime.param",
            Self::AwaitPromotion { .. } => "runtime.await-promotion",
            Self::MetricsQuery { .. } => "metrics.query",
            Self::MetricsRange { .. } => "metrics.query-range",
            Self::Judge { .. } => "metrics.judge",
            Self::Pipeline { .. } => "machines.pipeline",
        }
    }

    /// The machines this call moves in place and the release they move to: an update's, or a
    /// pipeline's with an update step. What reads the log for "which machines went to v2, when" asks
    /// this rather than matching `machines.update` alone.
    pub fn updates(&self) -> Option<(&[String], &Release)> {
        match self {
            Self::Update { ids, target } => Some((ids, target)),
            Self::Pipeline { ids, steps, .. } => {
                crate::pipeline::update_target(steps).map(|t| (ids.as_slice(), t))
            }
            _ => None,
        }
    }

    /// The machines a batch call names (a clone's sources), or `None` for calls that name no list.
    pub fn machine_ids(&self) -> Option<&[String]> {
        match self {
            Self::CloneFrom { sources: ids, .. }
            | Self::Update { ids, .. }
            | Self::Start { ids }
            | Self::Stop { ids, .. }
            | Self::Destroy { ids }
            | Self::WaitState { ids, .. }
            | Self::WaitHealthy { ids, .. }
            | Self::Cordon { ids }
            | Self::Uncordon { ids }
            | Self::Connections { ids }
            | Self::Pipeline { ids, .. } => Some(ids),
            _ => None,
        }
    }
}

/// A strategy's log level (the contract's `runtime.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Detail for whoever debugs the strategy.
    Debug,
    /// What the deploy is doing.
    Info,
    /// Something the user should look at; the deploy goes on.
    Warn,
    /// Something went wrong.
    Error,
}

/// What the host answered, in a form independent of any WIT version: the event log keeps it, and
/// replay hands it back to a resumed strategy instead of asking the platform again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostReply {
    /// The call succeeded and returns nothing (a log line, a phase, a sleep, metadata, weights, a
    /// promotion).
    Done,
    /// The app's machines (`machines.list`).
    Machines(Vec<Machine>),
    /// One machine (`machines.get`).
    /// Boxed: a machine is large, and every reply is moved and cloned on the hot path.
    Machine(Box<Machine>),
    /// One result per source of `machines.clone-from`, in order: the new machine's id, or why it
    /// could not be made.
    Cloned(Vec<Result<String, OpError>>),
    /// A batch operation: the machines that failed (empty: all succeeded).
    Batch(Vec<(String, OpError)>),
    /// One machine's checks (`health.checks`).
    Checks(Vec<Check>),
    /// What the traffic layer can do (`traffic.capabilities`).
    Capabilities(Capabilities),
    /// Open connections per machine, in the order asked.
    Counts(Vec<Result<u32, OpError>>),
    /// The current split of new connections (`traffic.weights`; empty: by machine count).
    Weights(Vec<ReleaseWeight>),
    /// One release's request statistics (`traffic.stats`).
    Stats(TrafficStats),
    /// Milliseconds since the Unix epoch on the host's clock (`runtime.now`; virtual under the
    /// simulator).
    Time(u64),
    /// A parameter's value (`runtime.param`); `None` if the strategy has no such parameter.
    Param(Option<ParamValue>),
    /// The answer of a metrics query (`metrics.query`, `metrics.query-range`).
    Series(Vec<Series>),
    /// The judge's decision (`metrics.judge`).
    Judgment(Verdict),
    /// What became of a pipeline's machines that did not take every step (`machines.pipeline`).
    Pipeline(PipelineOutcome),
    /// The call failed as a whole: a one-machine call's error, or a refusal of a call that names no
    /// machines.
    Failed(OpError),
}

/// How a deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The strategy (or the launch) returned `ok`: the app is on the target release.
    Succeeded,
    /// The deploy stopped on an error; [`EventKind::DeployFinished`] carries it.
    Failed,
}

/// Release counts of the fleet at the end of a deploy: enough for a report to say where the app was
/// left without keeping every machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FleetSummary {
    /// Machines in the app.
    pub machines: usize,
    /// (release version, machines on it), ascending by version.
    pub by_version: Vec<(u64, usize)>,
    /// Machines serving: started, not cordoned, every check passing ([`Machine::is_serving`]), on a
    /// release the traffic weights give a share (when weights are set and known).
    pub serving: usize,
    /// Machines cordoned, whatever their state.
    pub cordoned: usize,
}

impl FleetSummary {
    /// The summary of `machines`, as a platform listed them, under the traffic split `weights` (empty:
    /// by machine count): a machine whose release the weights give no share is not counted serving, as
    /// it takes nothing.
    pub fn weighed(machines: &[Machine], weights: &[ReleaseWeight]) -> Self {
        let serving =
            |m: &&Machine| m.is_serving() && !crate::platform::weighted_out(weights, m.release.version);
        let mut by: std::collections::BTreeMap<u64, usize> = Default::default();
        for m in machines {
            *by.entry(m.release.version).or_default() += 1;
        }
        Self {
            machines: machines.len(),
            by_version: by.into_iter().collect(),
            serving: machines.iter().filter(serving).count(),
            cordoned: machines.iter().filter(|m| m.cordoned).count(),
        }
    }
}

/// What happened: one kind of record in the deploy's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Boxed to keep every event (most are host calls) small: events are built on the hot path.
    /// The deploy began (the log's first record, or the first after a resume of a deploy that died
    /// before its first event).
    DeployStarted(Box<DeployStart>),
    /// A call that may change the fleet, recorded before it reaches the platform: a journal read
    /// after a crash knows which change may have been under way (`cutover resume` reconciles it).
    Intent {
        /// The call about to be made.
        #[serde(flatten)]
        call: HostCall,
    },
    /// A call the strategy made and what the host answered.
    HostCall {
        /// The call, with its arguments.
        #[serde(flatten)]
        call: HostCall,
        /// The host's answer.
        reply: HostReply,
        /// Host-clock milliseconds the call took (0 for calls that never wait).
        took_ms: u64,
    },
    /// An interrupted deploy was taken up again (`cutover resume`): the strategy was replayed through
    /// `replayed` journaled calls, and `reconciled` is the change that was under way when the previous
    /// process died, if one was. `aborting`: taken up by `cutover rollback`, to be undone.
    Resumed {
        /// Journaled calls the strategy is replayed through before it reaches the platform again.
        replayed: u64,
        /// The call that was under way when the previous process died, as the operation and the
        /// machines it names (`machines.update [m1, m2]`); `None` if none was.
        reconciled: Option<String>,
        /// The id of the process that took the deploy up, so a reader can match the log to it.
        pid: u32,
        /// Taken up by `cutover rollback`, to be undone rather than finished.
        #[serde(default)]
        aborting: bool,
    },
    /// `[deploy] release_command` began, before any machine changes. A journal with this record and no
    /// [`EventKind::ReleaseCommandFinished`] after it was killed while the command ran.
    ReleaseCommandStarted {
        /// The command, as fly.toml writes it.
        command: String,
        /// The release it runs on.
        release: Release,
        /// Milliseconds it may run.
        timeout_ms: u64,
        /// Run again by `cutover resume` because the previous process died before its end was recorded.
        #[serde(default)]
        rerun: bool,
    },
    /// What the platform did for the release command (its machine was created, its process started).
    /// Not a host call: a resumed strategy's replay never sees it.
    ReleaseCommandNote {
        /// The note, for the deploy's log.
        message: String,
    },
    /// One line of the release command's output, as it came.
    ReleaseCommandOutput {
        /// The line, without its newline (cut at 4 KiB).
        line: String,
    },
    /// The release command ended: exit code 0 (`error` is `None`), or why not. The deploy goes on only
    /// after a success.
    ReleaseCommandFinished {
        /// Its exit code, when it exited on its own.
        exit_code: Option<i32>,
        /// Why it failed (a non-zero exit, a crash, a timeout); `None` when it succeeded.
        error: Option<String>,
        /// Its last lines of output (at most 100), so the journal keeps them whatever else is pruned.
        tail: Vec<String>,
        /// Host-clock milliseconds it ran.
        took_ms: u64,
    },
    /// The release command was not run: `--skip-release-command`, or a resume found it had already
    /// succeeded for this release.
    ReleaseCommandSkipped {
        /// The command, as fly.toml writes it.
        command: String,
        /// Why it was not run.
        why: String,
    },
    /// The driver's own reading of one release's traffic while the strategy ran, on a platform with
    /// `traffic.stats` and a real clock, so the report draws request rate, errors and p99 for every
    /// deploy, not only for strategies that asked. Kept beside the log ([`EventSink::aside`]), never
    /// in it: it takes no sequence number, so it cannot move the events a crash test counts, and a
    /// resumed strategy's replay never sees it. A reading that failed is simply not recorded.
    TrafficSampled {
        /// The release's version.
        version: u64,
        /// The window the reading covers, in milliseconds (ending at the event's time).
        window_ms: u64,
        /// What the platform answered.
        stats: TrafficStats,
    },
    /// The deploy is over: the last record of every deploy that ran to its end (a killed process
    /// writes none, and `cutover resume` takes its deploy up).
    DeployFinished {
        /// Whether it reached its target.
        outcome: Outcome,
        /// What stopped it, for a user to read; `None` when it succeeded.
        error: Option<String>,
        /// Host-clock milliseconds from start to end (virtual under the simulator).
        duration_ms: u64,
        /// The fleet as the platform listed it after the deploy.
        fleet: FleetSummary,
    },
}

/// How a deploy began: what a reader of the log needs before the first call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployStart {
    /// The app deployed.
    pub app: String,
    /// The platform's short name ("sim", "local", "fly"; see [`Platform::name`](crate::Platform::name)).
    pub platform: String,
    /// The strategy's name as it describes itself, or "launch" for an app's first machines.
    pub strategy: String,
    /// The release the deploy moves to.
    pub target: Release,
    /// The release most machines ran before; `None` for an app's first deploy.
    pub previous: Option<Release>,
    /// Machines in the app when the deploy began.
    pub machines: usize,
    /// Whether this returns the app to an earlier release (`cutover rollback`).
    #[serde(default)]
    pub rollback: bool,
}

/// One record in the deploy's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the deploy's log, from 0.
    pub seq: u64,
    /// Host-clock milliseconds since the deploy started.
    pub at_ms: u64,
    /// What happened; flattened, so a record reads as one JSON object (`"event": "host_call"`).
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Receives events as they happen: the progress display, `--json` output and the journal are each
/// a sink, so the runtime records one stream and never knows who reads it.
pub trait EventSink: Send + Sync {
    /// Take one event. Called synchronously as each event is recorded, in `seq` order, so it should be
    /// quick. An error means the event is not on record: the run must not send the change it
    /// announces (an intent) to the platform, and stops.
    fn event(&self, event: &Event) -> Result<(), SinkError>;

    /// Take one event kept beside the log rather than in it (the driver's traffic readings): it has no
    /// number of its own (its `seq` is the number of the next event in the log, so readers can place it
    /// among them), it is never replayed, and a sink that keeps no such record ignores it, as this
    /// default does. An error loses the reading only: the run goes on.
    fn aside(&self, _event: &Event) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Why a sink could not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Writing failed: the journal (or another record) cannot be written.
    #[error(
        "the journal failed: event {seq} could not be written to {place}: {message}; nothing that is not on \
         record was sent to the platform"
    )]
    Failed {
        /// Where the record is (the journal's file).
        place: String,
        /// The event that could not be written.
        seq: u64,
        /// Why, as the storage said.
        message: String,
    },
    /// The deploy has journaled as many bytes as `[cutover.limits] journal_bytes` allows.
    #[error("the deploy's journal reached its bound of {limit_bytes} bytes")]
    Full {
        /// The bound, in bytes.
        limit_bytes: u64,
    },
}

/// A sink that keeps nothing.
pub struct Discard;

impl EventSink for Discard {
    fn event(&self, _: &Event) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A sink that keeps every event in memory (tests, reports).
#[derive(Default)]
pub struct Collect(
    /// The events so far; [`Collect::events`] copies them out.
    pub Mutex<Vec<Event>>,
);

impl Collect {
    /// A copy of every event kept so far, in the order they came.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for Collect {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event.clone());
        Ok(())
    }
}

/// Fan one event out to several sinks.
pub struct Tee(
    /// The sinks, each given every event in this order.
    pub Vec<Arc<dyn EventSink>>,
);

impl EventSink for Tee {
    /// Every sink gets the event, even after one failed (the display goes on); the first error is
    /// the answer.
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        let mut first = Ok(());
        for s in &self.0 {
            if let Err(e) = s.event(event)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// As [`Tee::event`]: every sink is told, the first error is the answer.
    fn aside(&self, event: &Event) -> Result<(), SinkError> {
        let mut first = Ok(());
        for s in &self.0 {
            if let Err(e) = s.aside(event)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}
