//! A simulated fleet kept between runs, as a real platform keeps its machines whatever happens to the
//! client: each run continues from the fleet the last one left, for as long as the scenario's seed
//! and `[fleet]` stay the same (its fingerprint).
//!
//! A run that changes the fleet writes it through from its first change ([`SimWorld::write_through`]:
//! a snapshot, then one log line per change), so a killed `cutover` leaves the fleet where the platform
//! had it; at the end of the run it is saved whole. Commands that only read (status, dry runs) open it
//! the same way and write nothing.

use crate::{SavedWorld, Scenario, SimPlatform, SimWorld};
use cutover_core::{CheckSpec, ErrorKind, OpError};
use std::path::PathBuf;
use std::sync::Arc;

/// Where one app's simulated fleet is kept between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFleet {
    /// The file (`sim-APP.json` in the app's state directory).
    pub path: PathBuf,
}

/// A handle's keeping: where, under which fingerprint, and whether this run found a fleet there.
#[derive(Debug, Clone)]
pub(crate) struct Keep {
    path: PathBuf,
    fingerprint: String,
    restored: bool,
}

impl SimPlatform {
    /// A platform for `app` on `scenario`'s world, continuing from the fleet kept at `keep` when an
    /// earlier run of the same scenario fleet left one there, else from the scenario's starting fleet
    /// (every machine on `v{fleet.version}` of `registry.fly.io/APP`). A kept fleet that cannot be
    /// read is an error naming the file.
    pub fn open_kept(
        scenario: Scenario,
        app: &str,
        checks: Vec<CheckSpec>,
        keep: KeptFleet,
    ) -> anyhow::Result<Self> {
        let image = format!("registry.fly.io/{app}:v{}", scenario.fleet.version);
        let fingerprint = scenario.fingerprint(app, &image);
        let saved = SavedWorld::read(&keep.path)?.filter(|saved| saved.fingerprint == fingerprint);
        let restored = saved.is_some();
        let world = match saved {
            Some(saved) => {
                tracing::info!(
                    "continuing the simulated fleet of {app} ({} machine(s)) from {}",
                    saved.machines_of(app),
                    keep.path.display()
                );
                SimWorld::restore(scenario, saved, app, checks)
            }
            None => SimWorld::new(scenario, app, &image, checks),
        };
        let mut platform = world.platform(app);
        platform.keep = Some(Keep { path: keep.path, fingerprint, restored });
        Ok(platform)
    }
}

impl Keep {
    /// Write the world through from now on.
    pub(crate) fn write_through(&self, world: &Arc<SimWorld>) -> Result<(), OpError> {
        world
            .write_through(self.path.clone(), &self.fingerprint)
            .map_err(|e| OpError::new(ErrorKind::Platform, format!("keeping the simulated fleet: {e:#}")))
    }

    /// Save the world whole, for the next run.
    pub(crate) fn save(&self, world: &Arc<SimWorld>) -> Result<(), OpError> {
        world.save(&self.fingerprint).write(&self.path).map_err(|e| {
            OpError::new(
                ErrorKind::Platform,
                format!("the simulated fleet was not kept for the next run: {e:#}"),
            )
        })
    }

    /// When no fleet was kept: that this is the scenario's starting fleet.
    pub(crate) fn note(&self) -> Option<String> {
        (!self.restored).then(|| {
            format!(
                "no simulated fleet of this scenario is kept in {}: this is the scenario's starting fleet",
                self.path.parent().map(|p| p.display().to_string()).unwrap_or_default()
            )
        })
    }
}
