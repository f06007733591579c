//! Recording availability: after every change to the world, when tracking is on, what is serving, how
//! new requests split, and which machines went and what was passing beside them; at every stop or
//! destroy, the long-lived connections it cut.
//!
//! Sampling reads the whole fleet (the world's census), so only changes sample: a look that changes
//! nothing does not (see `SimPlatform::read_machine`).

use crate::availability::{Availability, Cut, Removal};
use crate::traffic::split;
use crate::world::{SimMachine, SimWorld, WorldState};
use std::collections::BTreeMap;
use tokio::time::Instant;

impl SimWorld {
    /// Start recording serving capacity of `app` after every change.
    pub fn track_availability(&self, app: &str) {
        let mut st = self.lock();
        let now = Instant::now();
        let census = self.census(&mut st, app, now);
        let groups = census.groups;
        let baseline = groups.values().sum();
        let traffic = vec![(0, split(st.weights.get(app), &census.versions))];
        st.tracking = Some(Availability {
            baseline,
            samples: vec![(0, baseline)],
            traffic,
            group_baseline: groups.clone(),
            groups: vec![(0, groups)],
            removals: Vec::new(),
            app: app.to_string(),
        });
    }

    /// Long-lived connections cut by stops and destroys so far: (virtual ms, machine, connections).
    pub fn cut_connections(&self) -> Vec<(u64, String, u32)> {
        self.lock().cuts.iter().map(|c| (c.at_ms, c.id.clone(), c.open)).collect()
    }

    /// Long-lived connections cut by stops and destroys so far, with how long each machine drained.
    pub fn cuts(&self) -> Vec<Cut> {
        self.lock().cuts.clone()
    }

    /// What tracking recorded so far.
    pub fn availability(&self) -> Option<Availability> {
        self.lock().tracking.clone()
    }

    /// Record a capacity sample if tracking is on (called after every change).
    pub(crate) fn sample(&self, st: &mut WorldState) {
        let Some(app) = st.tracking.as_ref().map(|t| t.app.clone()) else { return };
        let now = Instant::now();
        let census = self.census(st, &app, now);
        let shares = split(st.weights.get(&app), &census.versions);
        let at = self.now_ms(now);
        if let Some(t) = st.tracking.as_mut() {
            t.samples.push((at, census.groups.values().sum()));
            t.traffic.push((at, shares));
            t.groups.push((at, census.groups));
        }
    }

    /// Note, if tracking is on, that machine `id` is about to be destroyed.
    pub(crate) fn note_removal(&self, st: &mut WorldState, id: &str, now: Instant) {
        let Some(app) = st.tracking.as_ref().map(|t| t.app.clone()) else { return };
        let Some((group, version)) = st.machines.get(id).map(|m| (m.group.clone(), m.release.version)) else {
            return;
        };
        let mut passing: BTreeMap<u64, usize> = BTreeMap::new();
        for m in st.machines.values_mut().filter(|m| m.app == app && m.group == group && m.id != id) {
            self.settle(m, now);
            if self.passing(m, now) {
                *passing.entry(m.release.version).or_default() += 1;
            }
        }
        let at_ms = self.now_ms(now);
        if let Some(t) = st.tracking.as_mut() {
            t.removals.push(Removal { at_ms, id: id.to_string(), group, version, passing });
        }
    }

    /// Note the connections a stop or destroy of `m` cuts.
    pub(crate) fn cut(&self, cuts: &mut Vec<Cut>, m: &SimMachine, now: Instant) {
        let open = self.connections_of(m, now);
        if open > 0 {
            let cordoned_ms = m.cordoned_at.map(|at| now.saturating_duration_since(at).as_millis() as u64);
            cuts.push(Cut { at_ms: self.now_ms(now), id: m.id.clone(), open, cordoned_ms });
        }
    }
}
