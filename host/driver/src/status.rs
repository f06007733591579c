//! `cutover status`: where an app's deploys and fleet stand, from the journal and the platform.
//!
//! The journal says what cutover last did (the latest release and how it ended, or that its process is
//! gone); the platform says what the machines run now. Reading both changes nothing: the journal is
//! not created when there is none, and the local platform's daemon is not started.

use crate::deploy::{list_with_retries, weights_now};
use crate::{DeployError, Target, current_release};
use cutover_config::Config;
use cutover_core::events::FleetSummary;
use cutover_core::{ErrorKind, MachineState, Release, ReleaseWeight};
use cutover_journal::{self as journal, Leftover, ReleaseRecord, ReleaseStatus};
use serde::Serialize;
use std::path::PathBuf;

/// Where an app stands: its latest release and its fleet now.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The app.
    pub app: String,
    /// The platform the fleet was read from (`sim`, `local`, `fly`).
    pub platform: String,
    /// The journal the releases were read from.
    pub journal: String,
    /// How many releases the journal holds for the app.
    pub releases: usize,
    /// The most recent release (deploy, rollback or launch), whatever its outcome.
    pub latest: ReleaseRecord,
    /// The machines as the platform lists them now; `None` when they could not be read.
    pub fleet: Option<FleetNow>,
    /// Why the fleet could not be read.
    #[serde(serialize_with = "message")]
    pub fleet_error: Option<DeployError>,
    /// Something to know about where the fleet came from (the simulator's starting fleet).
    pub fleet_note: Option<String>,
    /// What to do next, when the latest release needs it (an interrupted deploy); may span lines.
    pub advice: Option<String>,
}

/// The fleet now: the summary a deploy reports at its end, plus what is stopped and the release most
/// machines run.
#[derive(Debug, Clone, Serialize)]
pub struct FleetNow {
    /// Machines by release, serving and cordoned, as a deploy's end reports them.
    #[serde(flatten)]
    pub summary: FleetSummary,
    /// Machines in the `stopped` state (a retained blue fleet, or machines a deploy left stopped).
    pub stopped: usize,
    /// The release most machines run (ties go to the newer one); `None` when there are no machines.
    pub current: Option<Release>,
    /// Machines a deploy could not finish cleaning up (the platform refused past its retry budget),
    /// by id, with what is left to do and by which deploy, as the strategy tagged them.
    pub leftovers: Vec<Leftover>,
    /// The split of new connections by release a deploy set (a canary's step, or a bluegreen switch
    /// under way or interrupted); empty when they follow machine count or the platform has no weights.
    pub weights: Vec<ReleaseWeight>,
}

/// The metadata key a strategy tags a leftover machine with (see the Rust SDK's `leftover` module).
pub const LEFTOVER_KEY: &str = "cutover_leftover";

/// The machines of `fleet` a deploy tagged as leftovers, with what is left to do to each.
pub fn leftovers(fleet: &[cutover_core::Machine]) -> Vec<Leftover> {
    fleet
        .iter()
        .filter_map(|m| {
            let (_, todo) = m.metadata.iter().find(|(k, v)| k == LEFTOVER_KEY && !v.is_empty())?;
            Some(Leftover { id: m.id.clone(), todo: todo.clone() })
        })
        .collect()
}

/// Why there is no status to show.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The journal holds no release of the app (or there is no journal at all).
    #[error("no deploys of {app} recorded in {} yet; run `cutover deploy`", dir.display())]
    NoReleases {
        /// The app.
        app: String,
        /// The state directory the journal was looked for in.
        dir: PathBuf,
    },
    /// There is no state directory to read a journal from.
    #[error("no state directory was given, so no deploys of {app} are recorded")]
    NoState {
        /// The app.
        app: String,
    },
    /// The journal cannot be read.
    #[error("{0}")]
    Journal(#[from] journal::JournalError),
}

fn message<S: serde::Serializer>(e: &Option<DeployError>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// Read the app's latest release from the journal in the target's state directory and its fleet from
/// the target's platform. A fleet that cannot be read is reported in the status, not as an error: what
/// the journal says is worth showing on its own.
pub async fn read(config: &Config, target: &Target) -> Result<Status, StatusError> {
    let state = target.state().ok_or_else(|| StatusError::NoState { app: config.app.clone() })?;
    let no_releases = || StatusError::NoReleases { app: config.app.clone(), dir: state.path().to_path_buf() };
    if !state.has_journal() {
        return Err(no_releases());
    }
    let journal = state.journal()?;
    let mut records = journal.releases(&config.app)?;
    let releases = records.len();
    let latest = records.pop().ok_or_else(no_releases)?;

    let (fleet, fleet_error, fleet_note) = match read_fleet(config, target).await {
        Ok((fleet, note)) => (Some(fleet), None, note),
        Err(e) => (None, Some(e), None),
    };
    Ok(Status {
        app: config.app.clone(),
        platform: target.kind().to_string(),
        journal: journal.location().to_string(),
        releases,
        advice: advice(&latest),
        latest,
        fleet,
        fleet_error,
        fleet_note,
    })
}

/// The machines now, as a deploy would find them, and a note on where a simulated fleet came from.
async fn read_fleet(config: &Config, target: &Target) -> Result<(FleetNow, Option<String>), DeployError> {
    // The local platform's machines live and die with its daemon: none running means none left, and
    // starting one (as a deploy would) is not for a command that only looks.
    let Some(opened) = target.open_to_read(config).await? else {
        return Err(DeployError::Platform {
            kind: ErrorKind::Platform,
            message: format!(
                "no local daemon is running for {}, so {} has no machines on the local platform (they stop \
                 with it); `cutover local up` starts the daemon, `cutover deploy --platform local` launches the app",
                target.state().map(|s| s.path().display().to_string()).unwrap_or_default(),
                config.app
            ),
        });
    };
    let note = opened.platform.fleet_note();
    let machines = list_with_retries(&*opened.platform).await?;
    // A deploy under way or interrupted may have set the split: a machine of a release it gives no
    // share takes nothing, so it is not counted serving.
    let weights = weights_now(&*opened.platform).await;
    let fleet = FleetNow {
        summary: FleetSummary::weighed(&machines, &weights),
        stopped: machines.iter().filter(|m| m.state == MachineState::Stopped).count(),
        current: current_release(&machines),
        leftovers: leftovers(&machines),
        weights,
    };
    Ok((fleet, note))
}

/// What to do about the latest release, when something is to be done.
fn advice(latest: &ReleaseRecord) -> Option<String> {
    if latest.status != ReleaseStatus::Interrupted {
        return None;
    }
    let back = match &latest.previous {
        Some(p) => format!("v{}, the release it started from", p.version),
        None => "the previous release".to_string(),
    };
    Some(format!(
        "{} #{} (v{}) was interrupted: its process ({}) is gone, and it may have left the fleet part-way.\n\
         `cutover resume` continues it; `cutover rollback` returns the app to {back}.",
        latest.kind.as_str(),
        latest.id,
        latest.target.version,
        latest.pid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_journal::ReleaseKind;

    fn record(status: ReleaseStatus, previous: Option<u64>) -> ReleaseRecord {
        ReleaseRecord {
            id: 3,
            app: "a".into(),
            kind: ReleaseKind::Deploy,
            target: Release { version: 3, image: "img:v3".into() },
            previous: previous.map(|v| Release { version: v, image: format!("img:v{v}") }),
            strategy: "rolling".into(),
            strategy_hash: String::new(),
            params: serde_json::Value::Null,
            platform: "sim".into(),
            status,
            error: None,
            started_at_ms: 0,
            duration_ms: None,
            pid: 4242,
            waiting_gate: None,
            host: None,
            ci_job: None,
            heartbeat_at_ms: None,
            leftovers: vec![],
        }
    }

    #[test]
    fn an_interrupted_deploy_gets_advice_and_a_finished_one_none() {
        let a = advice(&record(ReleaseStatus::Interrupted, Some(2))).expect("advice");
        assert!(a.contains("deploy #3 (v3) was interrupted: its process (4242) is gone"), "{a}");
        assert!(a.contains("`cutover resume` continues it"), "{a}");
        assert!(a.contains("`cutover rollback` returns the app to v2, the release it started from"), "{a}");
        let a = advice(&record(ReleaseStatus::Interrupted, None)).expect("advice");
        assert!(a.contains("returns the app to the previous release"), "{a}");
        for s in [ReleaseStatus::Succeeded, ReleaseStatus::Failed, ReleaseStatus::Running] {
            assert_eq!(advice(&record(s, Some(2))), None);
        }
    }
}
