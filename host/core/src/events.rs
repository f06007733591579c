//! The deploy's event stream: every host call a strategy makes, plus the deploy's start and end.
//!
//! The runtime's dispatch point appends one [`Event`] per call, stamped with the host clock (virtual
//! under the simulator). Renderers (human progress, `--json`) subscribe through [`EventSink`]; the
//! journal and replay of later issues are built on the same records.

use crate::contract::ParamValue;
use crate::{Capabilities, Check, Machine, MachineState, OpError, Release, ReleaseWeight, TrafficStats};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// One call a strategy made to the host, with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum HostCall {
    #[serde(rename = "machines.list")]
    List,
    #[serde(rename = "machines.get")]
    Get { id: String },
    #[serde(rename = "machines.clone-from")]
    CloneFrom { sources: Vec<String>, target: Release, routable: bool },
    #[serde(rename = "machines.update")]
    Update { ids: Vec<String>, target: Release },
    #[serde(rename = "machines.start")]
    Start { ids: Vec<String> },
    #[serde(rename = "machines.stop")]
    Stop { ids: Vec<String>, signal: String, timeout_ms: u64 },
    #[serde(rename = "machines.destroy")]
    Destroy { ids: Vec<String> },
    #[serde(rename = "machines.wait-state")]
    WaitState { ids: Vec<String>, state: MachineState, timeout_ms: u64 },
    #[serde(rename = "machines.set-metadata")]
    SetMetadata { id: String, key: String, value: String },
    #[serde(rename = "health.wait-healthy")]
    WaitHealthy { ids: Vec<String>, timeout_ms: u64 },
    #[serde(rename = "health.checks")]
    Checks { id: String },
    #[serde(rename = "traffic.capabilities")]
    Capabilities,
    #[serde(rename = "traffic.cordon")]
    Cordon { ids: Vec<String> },
    #[serde(rename = "traffic.uncordon")]
    Uncordon { ids: Vec<String> },
    #[serde(rename = "traffic.connections")]
    Connections { ids: Vec<String> },
    #[serde(rename = "traffic.set-weights")]
    SetWeights { weights: Vec<ReleaseWeight> },
    #[serde(rename = "traffic.weights")]
    Weights,
    #[serde(rename = "traffic.stats")]
    Stats { version: u64, window_ms: u64 },
    #[serde(rename = "runtime.log")]
    Log { level: LogLevel, message: String },
    #[serde(rename = "runtime.phase")]
    Phase { name: String },
    #[serde(rename = "runtime.progress")]
    Progress { done: u32, total: u32 },
    #[serde(rename = "runtime.now")]
    Now,
    #[serde(rename = "runtime.sleep")]
    Sleep { ms: u64 },
    #[serde(rename = "runtime.param")]
    Param { name: String },
    #[serde(rename = "runtime.await-promotion")]
    AwaitPromotion { gate: String, timeout_ms: u64 },
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
            | Self::Connections { ids } => Some(ids),
            _ => None,
        }
    }
}

/// A strategy's log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// What the host answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostReply {
    Done,
    Machines(Vec<Machine>),
    /// Boxed: a machine is large, and every reply is moved and cloned on the hot path.
    Machine(Box<Machine>),
    Cloned(Vec<Result<String, OpError>>),
    /// A batch operation: the machines that failed (empty: all succeeded).
    Batch(Vec<(String, OpError)>),
    Checks(Vec<Check>),
    Capabilities(Capabilities),
    /// Open connections per machine, in the order asked.
    Counts(Vec<Result<u32, OpError>>),
    Weights(Vec<ReleaseWeight>),
    Stats(TrafficStats),
    Time(u64),
    Param(Option<ParamValue>),
    Failed(OpError),
}

/// How a deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// Release counts of the fleet at the end of a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FleetSummary {
    pub machines: usize,
    /// (release version, machines on it), ascending by version.
    pub by_version: Vec<(u64, usize)>,
    pub serving: usize,
    pub cordoned: usize,
}

impl FleetSummary {
    pub fn of(machines: &[Machine]) -> Self {
        let mut by: std::collections::BTreeMap<u64, usize> = Default::default();
        for m in machines {
            *by.entry(m.release.version).or_default() += 1;
        }
        Self {
            machines: machines.len(),
            by_version: by.into_iter().collect(),
            serving: machines.iter().filter(|m| m.is_serving()).count(),
            cordoned: machines.iter().filter(|m| m.cordoned).count(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Boxed to keep every event (most are host calls) small: events are built on the hot path.
    DeployStarted(Box<DeployStart>),
    /// A call that may change the fleet, recorded before it reaches the platform: a journal read
    /// after a crash knows which change may have been under way (`cutover resume` reconciles it).
    Intent {
        #[serde(flatten)]
        call: HostCall,
    },
    HostCall {
        #[serde(flatten)]
        call: HostCall,
        reply: HostReply,
        took_ms: u64,
    },
    /// An interrupted deploy was taken up again (`cutover resume`): the strategy was replayed through
    /// `replayed` journaled calls, and `reconciled` is the change that was under way when the previous
    /// process died, if one was. `aborting`: taken up by `cutover rollback`, to be undone.
    Resumed {
        replayed: u64,
        reconciled: Option<String>,
        pid: u32,
        #[serde(default)]
        aborting: bool,
    },
    DeployFinished {
        outcome: Outcome,
        error: Option<String>,
        duration_ms: u64,
        fleet: FleetSummary,
    },
}

/// How a deploy began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployStart {
    pub app: String,
    pub platform: String,
    pub strategy: String,
    pub target: Release,
    pub previous: Option<Release>,
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
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Receives events as they happen.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event);
}

/// A sink that keeps nothing.
pub struct Discard;

impl EventSink for Discard {
    fn event(&self, _: &Event) {}
}

/// A sink that keeps every event in memory (tests, reports).
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for Collect {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event.clone());
    }
}

/// Fan one event out to several sinks.
pub struct Tee(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Tee {
    fn event(&self, event: &Event) {
        for s in &self.0 {
            s.event(event);
        }
    }
}
