//! A simulated fleet kept between runs, as a real platform keeps its machines whatever happens to the
//! client: each run continues from the fleet the last one left, for as long as the scenario's seed
//! and `[fleet]` stay the same (its fingerprint).
//!
//! A run that changes the fleet writes it through from its first change ([`SimWorld::write_through`]:
//! a snapshot, then one log line per change), so a killed `cutover` leaves the fleet where the platform
//! had it; at the end of the run it is saved whole. Commands that only read (status, dry runs) open it
//! the same way and write nothing.
//!
//! [`SimPlatform::open_kept`](crate::SimPlatform::open_kept) opens a platform on a kept fleet.

use crate::world::SimWorld;
use cutover_core::{ErrorKind, OpError};
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
    pub(crate) path: PathBuf,
    pub(crate) fingerprint: String,
    pub(crate) restored: bool,
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
