//! The traffic model: how new requests split between releases, and the long-lived connections each
//! machine holds.
//!
//! Requests split by traffic weights when a strategy set some, else by serving machine count (what a
//! proxy spreading connections evenly gives). Every started, routable machine holds the scenario's
//! number of long-lived connections; once cordoned, each ends after its own seeded lifetime, so a
//! drain can be measured and a stop that came too early shows as connections cut.

use crate::world::{SimMachine, SimWorld, WorldState};
use cutover_core::{MachineState, ReleaseWeight};
use std::collections::BTreeMap;
use tokio::time::Instant;

impl SimWorld {
    /// Share of new requests each release of `app` gets right now, in percent (see [`split`]).
    pub(crate) fn shares(&self, st: &mut WorldState, app: &str, now: Instant) -> Vec<(u64, f64)> {
        let census = self.census(st, app, now);
        split(st.weights.get(app), &census.versions)
    }

    /// Share of new requests each release of `app` gets right now, in percent: what a benchmark polls
    /// to find when a new release first takes traffic (tracking samples only at changes, and a machine
    /// starts passing its checks between them).
    pub fn traffic_shares(&self, app: &str) -> Vec<(u64, f64)> {
        let mut st = self.lock();
        self.shares(&mut st, app, Instant::now())
    }

    /// Open long-lived connections of a machine at `now`: the scenario's number while it takes new
    /// ones; once it stops taking them (cordoned, or its release weighted to 0), each ends after its
    /// own seeded lifetime. A boot that never took one (created cordoned, or in rotation only while
    /// its release had no share) holds none.
    pub(crate) fn connections_of(&self, m: &SimMachine, now: Instant) -> u32 {
        if m.state != MachineState::Started || !m.took {
            return 0;
        }
        if m.takes_connections() {
            return self.scenario.traffic.connections;
        }
        // The first instant it stopped taking them: its cordon or its release's 0%.
        let cordoned = if m.cordoned { m.cordoned_at } else { None };
        let Some(since) = cordoned.into_iter().chain(m.unweighted_at).min() else { return 0 };
        let n = self.scenario.traffic.connections;
        (0..u64::from(n))
            .filter(|k| {
                let life = self.latency(
                    self.scenario.traffic.connection_lifetime,
                    &m.id,
                    2_000_000 + m.boots * 64 + k,
                );
                since + life > now
            })
            .count() as u32
    }
}

/// [`cutover_core::platform::weighted_out`] of an app's weights, when it has any.
pub(crate) fn weighted_out(weights: Option<&Vec<ReleaseWeight>>, version: u64) -> bool {
    weights.is_some_and(|ws| cutover_core::platform::weighted_out(ws, version))
}

/// Share of new requests each release gets, in percent, given the machines serving per release. With
/// weights set, a release gets its weight if it has a serving machine (weights of releases with none
/// are spread over the others); without, releases share by serving machine count.
pub(crate) fn split(weights: Option<&Vec<ReleaseWeight>>, serving: &BTreeMap<u64, usize>) -> Vec<(u64, f64)> {
    let total: usize = serving.values().sum();
    if total == 0 {
        return vec![];
    }
    let by_count = || serving.iter().map(|(v, n)| (*v, *n as f64 * 100.0 / total as f64)).collect();
    match weights {
        Some(weights) => {
            let live: Vec<(u64, f64)> = weights
                .iter()
                .filter(|w| serving.contains_key(&w.version))
                .map(|w| (w.version, f64::from(w.percent)))
                .collect();
            let sum: f64 = live.iter().map(|(_, p)| p).sum();
            if sum == 0.0 {
                // Every weighted release lost its machines: fall back to machine count.
                return by_count();
            }
            live.into_iter().map(|(v, p)| (v, p * 100.0 / sum)).collect()
        }
        None => by_count(),
    }
}
