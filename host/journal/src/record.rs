//! What the journal holds about a release: how it started, where it stands, what `cutover releases`
//! shows of it and what `cutover resume` needs of it.

use cutover_core::Release;
use cutover_core::contract::DeployPlan;
use cutover_core::events::Event;
use serde::{Deserialize, Serialize};

/// What started a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// `cutover deploy`: a new release, rolled out by a strategy.
    Deploy,
    /// `cutover rollback`: an earlier release, rolled out again by a strategy.
    Rollback,
    /// The app's first machines, created from nothing (no strategy runs).
    Launch,
}

impl ReleaseKind {
    /// The word shown in `cutover releases`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Launch => "launch",
        }
    }
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Under way, in a process that is still alive.
    Running,
    /// The strategy finished and the deploy succeeded.
    Succeeded,
    /// The deploy ended with an error (recorded beside it).
    Failed,
    /// Marked running, but the process that ran it is gone (killed, crashed, machine lost).
    Interrupted,
}

impl ReleaseStatus {
    /// The word shown in `cutover releases`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One row of `cutover releases`.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseRecord {
    /// Sequence number of the deploy in this journal (1, 2, …).
    pub id: i64,
    /// The app deployed: one journal may hold several apps' releases.
    pub app: String,
    /// What started it.
    pub kind: ReleaseKind,
    /// The release rolled out.
    pub target: Release,
    /// The release the fleet ran before (what a rollback goes back to); none on a first launch.
    pub previous: Option<Release>,
    /// The strategy's name, as it described itself.
    pub strategy: String,
    /// BLAKE3 of the strategy component, so "which code ran" is never ambiguous.
    pub strategy_hash: String,
    /// The strategy's parameters, as JSON.
    pub params: serde_json::Value,
    /// The platform it ran on (`sim`, `local`, `fly`).
    pub platform: String,
    /// Where it stands.
    pub status: ReleaseStatus,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// Host-clock duration (virtual under the simulator); `None` while running.
    pub duration_ms: Option<i64>,
    /// The process that runs (or ran) it: a running release whose process is gone is interrupted.
    pub pid: u32,
    /// The manual gate the deploy is waiting at, if any.
    pub waiting_gate: Option<String>,
    /// Machines the deploy could not finish cleaning up (the platform refused past its retry budget):
    /// the release succeeded, and these are left to do.
    pub leftovers: Vec<Leftover>,
}

/// A machine a deploy left to finish, and what is left to do to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leftover {
    /// The machine.
    pub id: String,
    /// What is left to do and by which deploy, as the strategy tagged it (`destroy by v2`).
    pub todo: String,
}

/// What is known about a release when it starts.
pub struct NewRelease<'a> {
    /// The app deployed.
    pub app: &'a str,
    /// What starts it.
    pub kind: ReleaseKind,
    /// The release to roll out.
    pub target: &'a Release,
    /// The release the fleet runs now, if any.
    pub previous: Option<&'a Release>,
    /// The strategy's name.
    pub strategy: &'a str,
    /// BLAKE3 of the strategy component, hex.
    pub strategy_hash: &'a str,
    /// The strategy's parameters, as JSON.
    pub params: serde_json::Value,
    /// The platform it runs on.
    pub platform: &'a str,
    /// The plan the strategy is given, and how the config named the strategy: what a resume needs.
    pub plan: Option<&'a DeployPlan>,
    /// A built-in name or the path of the component, as the deploy resolved it.
    pub strategy_ref: Option<&'a str>,
}

/// What `cutover resume` needs of an interrupted release besides its record.
#[derive(Debug, Clone)]
pub struct ResumeRecord {
    /// The plan the interrupted run's strategy was given: a resume gives it the same.
    pub plan: DeployPlan,
    /// A built-in name or the path of the component, as the deploy resolved it.
    pub strategy_ref: String,
    /// Every event journaled, in order.
    pub events: Vec<Event>,
}
