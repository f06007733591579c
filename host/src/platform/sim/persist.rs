//! Keeping a simulated fleet between runs of `cutover`, so that a second deploy starts from what the
//! first one left, and `cutover rollback` and `cutover releases` mean on the simulator what they mean on
//! a real platform.
//!
//! The fleet is saved as JSON at the end of every run. Machines are saved as they will end up: pending
//! boots and stops are applied, so a restored fleet is at rest (an `immediate` deploy that returned
//! while machines were still booting leaves them booted). A saved fleet is only restored for the
//! scenario fleet it grew from (same seed, app and `[fleet]` table); change those and the next run
//! starts afresh from the scenario.

use super::{SimMachine, SimWorld, WorldState};
use crate::platform::sim::Scenario;
use crate::platform::{CheckSpec, MachineState, Release, ReleaseWeight};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Bumped when the format changes; an older file is ignored (the fleet starts afresh).
const FORMAT: u32 = 2;

/// A simulated world at rest, as saved between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedWorld {
    format: u32,
    /// Which scenario fleet this world grew from (see [`Scenario::fingerprint`]).
    pub fingerprint: String,
    next_index: u64,
    machines: Vec<SavedMachine>,
    destroyed: BTreeMap<String, String>,
    weights: BTreeMap<String, Vec<ReleaseWeight>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedMachine {
    id: String,
    app: String,
    name: String,
    region: String,
    group: String,
    release: Release,
    state: MachineState,
    cordoned: bool,
    volumes: Vec<String>,
    metadata: BTreeMap<String, String>,
    desired_running: bool,
    ops: BTreeMap<String, u64>,
    boots: u64,
    stops: u64,
}

impl Scenario {
    /// What identifies the starting fleet of this scenario for `app`: a saved world is restored only
    /// under the same fingerprint.
    pub fn fingerprint(&self, app: &str, default_image: &str) -> String {
        let key = serde_json::json!({
            "app": app,
            "seed": self.seed,
            "fleet": self.fleet,
            "default_image": default_image,
        });
        blake3::hash(key.to_string().as_bytes()).to_hex()[..16].to_string()
    }
}

impl SavedWorld {
    /// Read a saved world; `None` when there is none, or it is of another format.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading the simulated fleet {}", path.display()));
            }
        };
        let saved: Self = serde_json::from_str(&text).with_context(|| {
            format!("the simulated fleet {} is damaged; delete it to start afresh", path.display())
        })?;
        Ok((saved.format == FORMAT).then_some(saved))
    }

    /// Write atomically (a killed run leaves the previous file, never half of one).
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::os::write_atomically(path, &serde_json::to_vec(self)?)
            .with_context(|| format!("writing the simulated fleet {}", path.display()))
    }

    /// Machines saved for `app`.
    pub fn machines_of(&self, app: &str) -> usize {
        self.machines.iter().filter(|m| m.app == app).count()
    }
}

impl SimWorld {
    /// The world at rest: every pending boot, stop and crash of a release applied.
    pub fn save(&self, fingerprint: &str) -> SavedWorld {
        let st = self.lock();
        let machines = st
            .machines
            .values()
            .map(|m| {
                let state = m.timeline.back().map(|&(_, s)| s).unwrap_or(m.state);
                SavedMachine {
                    id: m.id.clone(),
                    app: m.app.clone(),
                    name: m.name.clone(),
                    region: m.region.clone(),
                    group: m.group.clone(),
                    release: m.release.clone(),
                    state,
                    cordoned: m.cordoned,
                    volumes: m.volumes.clone(),
                    metadata: m.metadata.clone(),
                    desired_running: m.desired_running,
                    ops: m.ops.clone(),
                    boots: m.boots,
                    stops: m.stops,
                }
            })
            .collect();
        SavedWorld {
            format: FORMAT,
            fingerprint: fingerprint.to_string(),
            next_index: st.next_index,
            machines,
            destroyed: st.destroyed.clone(),
            weights: st.weights.clone(),
        }
    }

    /// A world that continues from `saved`, with the scenario's latencies and faults. A scenario crash
    /// (`[[faults.crash]] machine = i`) hits the app's i-th machine in id order.
    pub fn restore(scenario: Scenario, saved: SavedWorld, app: &str, checks: Vec<CheckSpec>) -> Arc<Self> {
        let origin = Instant::now();
        let mut machines = BTreeMap::new();
        let mut index = 0;
        for m in saved.machines {
            let crash_at = if m.app == app {
                index += 1;
                scenario.faults.crash.iter().find(|c| c.machine == index - 1).map(|c| origin + c.at.0)
            } else {
                None
            };
            let started = m.state == MachineState::Started;
            machines.insert(
                m.id.clone(),
                SimMachine {
                    id: m.id,
                    app: m.app,
                    name: m.name,
                    region: m.region,
                    group: m.group,
                    release: m.release,
                    state: m.state,
                    timeline: VecDeque::new(),
                    // Up long enough for every check to have reported.
                    started_at: started.then(|| origin - Duration::from_secs(3600)),
                    cordoned: m.cordoned,
                    cordoned_at: None,
                    volumes: m.volumes,
                    metadata: m.metadata,
                    desired_running: m.desired_running,
                    crash_at,
                    ops: m.ops,
                    boots: m.boots,
                    stops: m.stops,
                },
            );
        }
        let state = WorldState {
            machines,
            destroyed: saved.destroyed,
            next_index: saved.next_index,
            global_ops: BTreeMap::new(),
            tracking: None,
            weights: saved.weights,
            cuts: Vec::new(),
        };
        Arc::new(Self { scenario, checks, origin, state: Mutex::new(state), kept: Mutex::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    #[tokio::test(start_paused = true)]
    async fn a_saved_world_comes_back_at_rest() {
        let scenario: Scenario = toml::from_str("[fleet]\nmachines = 3").unwrap();
        let w = SimWorld::new(scenario.clone(), "app", "img:v1", vec![]);
        let p = w.platform("app");
        let ids: Vec<String> = p.list().await.unwrap().into_iter().map(|m| m.id).collect();
        let v2 = Release { version: 2, image: "img:v2".into() };
        p.update(&ids[0], &v2).await.unwrap();
        p.cordon(&ids[1]).await.unwrap();
        // Saved while machine 0 is still booting: it comes back started.
        let saved = w.save("fp");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.json");
        saved.write(&path).unwrap();
        let back = SavedWorld::read(&path).unwrap().unwrap();
        assert_eq!(back.fingerprint, "fp");
        assert_eq!(back.machines_of("app"), 3);

        let w2 = SimWorld::restore(scenario, back, "app", vec![]);
        let ms = w2.snapshot("app");
        let m0 = ms.iter().find(|m| m.id == ids[0]).unwrap();
        assert_eq!((m0.release.version, m0.state), (2, MachineState::Started));
        assert!(ms.iter().find(|m| m.id == ids[1]).unwrap().cordoned);
        // New machines do not reuse ids.
        let p2 = w2.platform("app");
        let clone = p2.clone_from(&ids[2], &v2, true).await.unwrap();
        assert!(!ids.contains(&clone.id));
        assert_eq!(SavedWorld::read(&dir.path().join("absent.json")).unwrap().map(|s| s.format), None);
    }

    #[test]
    fn the_fingerprint_follows_the_fleet_not_the_faults() {
        let a: Scenario = toml::from_str("[fleet]\nmachines = 3").unwrap();
        let b: Scenario = toml::from_str("[fleet]\nmachines = 3\n[faults]\napi_error_rate = 0.5").unwrap();
        let c: Scenario = toml::from_str("[fleet]\nmachines = 4").unwrap();
        assert_eq!(a.fingerprint("app", "i"), b.fingerprint("app", "i"));
        assert_ne!(a.fingerprint("app", "i"), c.fingerprint("app", "i"));
        assert_ne!(a.fingerprint("app", "i"), a.fingerprint("other", "i"));
    }
}
