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

    /// The kind a journal row names (an unknown word reads as a deploy).
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "rollback" => Self::Rollback,
            "launch" => Self::Launch,
            _ => Self::Deploy,
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

    /// The status a journal row holds: `running` until the deploy ends (whether its runner is alive
    /// is judged by the journal, not stored).
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Running,
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
    /// The machine that runs (or ran) it; recorded by a shared (PostgreSQL) journal only.
    pub host: Option<String>,
    /// The CI job that runs (or ran) it (`GITHUB_RUN_ID`, `CI_JOB_ID`, `BUILDKITE_JOB_ID`), if any.
    pub ci_job: Option<String>,
    /// When the running deploy last renewed its heartbeat (shared journal only): a running release
    /// whose heartbeat stopped is interrupted, wherever it ran.
    pub heartbeat_at_ms: Option<i64>,
    /// The manual gate the deploy is waiting at, if any.
    pub waiting_gate: Option<String>,
    /// Machines the deploy could not finish cleaning up (the platform refused past its retry budget):
    /// the release succeeded, and these are left to do.
    pub leftovers: Vec<Leftover>,
}

/// Leftovers as stored (a JSON list; `None` when there are none).
pub(crate) fn leftovers_json(leftovers: &[Leftover]) -> Option<String> {
    (!leftovers.is_empty()).then(|| serde_json::to_string(leftovers).unwrap_or_default())
}

/// Leftovers as read back (a missing or unreadable column reads as none).
pub(crate) fn leftovers_from(json: Option<&str>) -> Vec<Leftover> {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default()
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

/// Who runs a deploy: this process, on this machine, in this CI job. A shared journal records it so a
/// second deploy from another runner is told where the running one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// The process.
    pub pid: u32,
    /// The machine's host name.
    pub host: String,
    /// The CI job, from the environment CI services set.
    pub ci_job: Option<String>,
}

/// Environment variables naming a CI job, in the order they are looked at.
const CI_JOB_VARS: [&str; 3] = ["GITHUB_RUN_ID", "CI_JOB_ID", "BUILDKITE_JOB_ID"];

impl Runner {
    /// This process.
    pub fn this() -> Self {
        let ci_job = CI_JOB_VARS.iter().find_map(|var| {
            std::env::var(var).ok().filter(|v| !v.trim().is_empty()).map(|v| format!("{var}={}", v.trim()))
        });
        Self { pid: std::process::id(), host: host_name(), ci_job }
    }

    /// "process 123 on build-7 (CI job GITHUB_RUN_ID=42)", as messages name a runner.
    pub fn describe(pid: u32, host: Option<&str>, ci_job: Option<&str>) -> String {
        let mut s = format!("process {pid}");
        if let Some(h) = host {
            s.push_str(&format!(" on {h}"));
        }
        if let Some(j) = ci_job {
            s.push_str(&format!(" (CI job {j})"));
        }
        s
    }
}

/// This machine's host name (empty when the system will not say).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A running release as the one-deploy-per-app check sees it.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    /// The release.
    pub id: i64,
    /// Its version.
    pub version: i64,
    /// Its strategy.
    pub strategy: String,
    /// The process that runs it.
    pub pid: u32,
    /// The machine, when the journal records it.
    pub host: Option<String>,
    /// The CI job, when the journal records it.
    pub ci_job: Option<String>,
    /// When it started.
    pub started_at_ms: i64,
    /// Its last heartbeat, when the journal records one.
    pub heartbeat_at_ms: Option<i64>,
}
