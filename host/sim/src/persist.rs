//! Keeping a simulated fleet between runs of `cutover`, so that a second deploy starts from what the
//! first one left, and `cutover rollback` and `cutover releases` mean on the simulator what they mean on
//! a real platform.
//!
//! The fleet is saved as JSON at the end of every run. Machines are saved as they will end up: pending
//! boots and stops are applied, so a restored fleet is at rest (an `immediate` deploy that returned
//! while machines were still booting leaves them booted).
//!
//! While a run goes on, every change is also appended to a log beside the file (one JSON line per
//! changed machine, destroyed machine or traffic split), as a real platform keeps its state whatever
//! happens to the client: a `cutover` killed mid-deploy leaves the fleet as far as it got, and reading
//! the file folds the log in. Appending one line per change keeps this O(1) per change at 10,000
//! machines, where rewriting the whole file would not be. A saved fleet is only restored for the
//! scenario fleet it grew from (same seed, app and `[fleet]` table); change those and the next run
//! starts afresh from the scenario.

use crate::SimError;
use crate::scenario::Scenario;
use crate::world::{Kept, SimMachine, SimWorld, WorldState};
use cutover_core::{CheckSpec, MachineState, Release, ReleaseWeight};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
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

/// One change to a kept world, as a line of its log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Change {
    /// A machine as it is now (at rest); `next_index` is the world's, so a clone's index is kept.
    Machine {
        machine: Box<SavedMachine>,
        next_index: u64,
    },
    Destroyed {
        id: String,
        app: String,
    },
    Weights(BTreeMap<String, Vec<ReleaseWeight>>),
}

/// The change log beside a saved world.
fn log_path(path: &Path) -> PathBuf {
    path.with_extension("log")
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
    pub fn read(path: &Path) -> Result<Option<Self>, SimError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SimError::io("reading the simulated fleet", path)(e)),
        };
        let mut saved: Self =
            serde_json::from_str(&text).map_err(|source| SimError::Damaged { path: path.into(), source })?;
        if saved.format != FORMAT {
            return Ok(None);
        }
        saved.fold_log(&log_path(path))?;
        Ok(Some(saved))
    }

    /// Apply the changes a run logged after this snapshot. A line cut short by a killed process (only
    /// the last can be) ends the log.
    fn fold_log(&mut self, log: &Path) -> Result<(), SimError> {
        let file = match std::fs::File::open(log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SimError::io("reading", log)(e)),
        };
        // By id, so folding a long log into a large fleet stays O(n log n).
        let mut by_id: BTreeMap<String, SavedMachine> =
            self.machines.drain(..).map(|m| (m.id.clone(), m)).collect();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(SimError::io("reading", log))?;
            let Ok(change) = serde_json::from_str::<Change>(&line) else { break };
            match change {
                Change::Machine { machine, next_index } => {
                    self.next_index = self.next_index.max(next_index);
                    by_id.insert(machine.id.clone(), *machine);
                }
                Change::Destroyed { id, app } => {
                    by_id.remove(&id);
                    self.destroyed.insert(id, app);
                }
                Change::Weights(weights) => self.weights = weights,
            }
        }
        self.machines = by_id.into_values().collect();
        Ok(())
    }

    /// Write atomically (a killed run leaves the previous file, never half of one), then drop the
    /// change log, which the file now holds.
    pub fn write(&self, path: &Path) -> Result<(), SimError> {
        // A saved world is plain data: serializing it cannot fail.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        cutover_core::os::write_atomically(path, &bytes)
            .map_err(SimError::io("writing the simulated fleet", path))?;
        match std::fs::remove_file(log_path(path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(SimError::io("removing", log_path(path))(e))
            }
            _ => Ok(()),
        }
    }

    /// Machines saved for `app`.
    pub fn machines_of(&self, app: &str) -> usize {
        self.machines.iter().filter(|m| m.app == app).count()
    }
}

impl SavedMachine {
    /// A machine at rest: its pending boot or stop applied.
    fn of(m: &SimMachine) -> Self {
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
    }
}

impl SimWorld {
    /// Keep the world at `path` (under `fingerprint`) from now on, change by change (see the module
    /// docs): written whole now, then one log line per change.
    pub fn write_through(&self, path: PathBuf, fingerprint: &str) -> Result<(), SimError> {
        self.save(fingerprint).write(&path)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path(&path))
            .map_err(SimError::io("opening", log_path(&path)))?;
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(Kept { log, path });
        Ok(())
    }

    /// Log a change, when the world is written through: machine `id` (made, changed or destroyed),
    /// or with `None`, the traffic split.
    pub(super) fn changed(&self, id: Option<&str>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let Some(k) = kept.as_mut() else { return };
        let change = {
            let st = self.lock();
            match id {
                Some(id) => match (st.machines.get(id), st.destroyed.get(id)) {
                    (Some(m), _) => {
                        Change::Machine { machine: Box::new(SavedMachine::of(m)), next_index: st.next_index }
                    }
                    (None, Some(app)) => Change::Destroyed { id: id.to_string(), app: app.clone() },
                    (None, None) => return,
                },
                None => Change::Weights(st.weights.clone()),
            }
        };
        let mut line = serde_json::to_vec(&change).unwrap_or_default();
        line.push(b'\n');
        // One write per line, so a killed process cuts at most the last one.
        if let Err(e) = k.log.write_all(&line) {
            tracing::error!(
                "the simulated fleet's change was not kept in {}: {e}",
                log_path(&k.path).display()
            );
        }
    }

    /// The world at rest: every pending boot, stop and crash of a release applied.
    pub fn save(&self, fingerprint: &str) -> SavedWorld {
        let st = self.lock();
        let machines = st.machines.values().map(SavedMachine::of).collect();
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
            // As the cordon's instant, the weights' is not kept: taken as the world's start.
            let unweighted_at =
                crate::traffic::weighted_out(saved.weights.get(&m.app), m.release.version).then_some(origin);
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
                    unweighted_at,
                    took: started && !m.cordoned,
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
    use cutover_core::Platform;

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

    #[tokio::test(start_paused = true)]
    async fn a_world_written_through_is_read_back_as_far_as_it_got() {
        let scenario: Scenario = toml::from_str("[fleet]\nmachines = 3").unwrap();
        let w = SimWorld::new(scenario.clone(), "app", "img:v1", vec![]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.json");
        w.write_through(path.clone(), "fp").unwrap();
        let p = w.platform("app");
        let ids: Vec<String> = p.list().await.unwrap().into_iter().map(|m| m.id).collect();
        let v2 = Release { version: 2, image: "img:v2".into() };
        let clone = p.clone_from(&ids[0], &v2, false).await.unwrap();
        p.update(&ids[1], &v2).await.unwrap();
        p.destroy(&ids[2]).await.unwrap();
        p.set_weights(&[ReleaseWeight { version: 2, percent: 100 }]).await.unwrap();
        // The process dies here, mid-write of one more line: no final save.
        std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(&path))
            .unwrap()
            .write_all(b"{\"mach")
            .unwrap();

        let back = SavedWorld::read(&path).unwrap().unwrap();
        let expected = w.save("fp");
        let ids_of = |s: &SavedWorld| {
            let mut v: Vec<(String, u64)> =
                s.machines.iter().map(|m| (m.id.clone(), m.release.version)).collect();
            v.sort();
            v
        };
        assert_eq!(ids_of(&back), ids_of(&expected));
        assert!(back.machines.iter().any(|m| m.id == clone.id && m.cordoned), "the clone, cordoned");
        assert_eq!(back.destroyed.get(&ids[2]).map(String::as_str), Some("app"));
        assert_eq!(back.weights, expected.weights);
        assert_eq!(back.next_index, expected.next_index, "a clone's id is not handed out twice");

        // A whole save takes the log in and drops it.
        expected.write(&path).unwrap();
        assert!(!log_path(&path).exists());
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
