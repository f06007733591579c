//! The simulator's latency model, read back for lower bounds (`host/cutover/benches/strategies.rs`).
//!
//! Every draw of a simulated deploy is fixed by the seed and what it is the draw *of*, never by the
//! order a strategy happens to do things in:
//!
//! - the n-th API call of one kind on a machine (its n-th `update machine`, say), or on the app for
//!   calls on no machine ([`SimWorld::api_latency`]);
//! - a machine's n-th boot and n-th stop ([`SimWorld::boot_time`], [`SimWorld::stop_time`]);
//! - when a machine's checks first report after a boot ([`SimWorld::check_delay`]): the grace period
//!   plus a phase in `[0, interval)` drawn per machine and boot, then one result every interval;
//! - how long each long-lived connection of a machine lasts once it is cordoned
//!   ([`SimWorld::connection_lifetimes`]);
//! - the ids the next machines created will get ([`SimWorld::next_ids`]), which key the draws of
//!   clones.
//!
//! So a bound can price each operation a strategy's semantics require (the first cordon of machine
//! i, its first update, the stop and boot that update causes...) at exactly what this run drew for it:
//! any strategy with the same semantics makes those operations and gets those draws. These are the
//! simulator's own formulas, not copies: the tests below hold them to what a machine does on the
//! platform.

use crate::draw::{api_key, machine_id, unit};
use crate::scenario::Scenario;
use crate::world::SimWorld;
use std::time::Duration;

impl SimWorld {
    /// The scenario this world runs: its latency ranges, faults and traffic.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// How long the `n`-th (from 1) API call `what` (e.g. `"update machine"`, `"list machines"`; the
    /// sim's operation names) on `subject` takes: a machine id, or the app's name for calls on no machine.
    pub fn api_latency(&self, subject: &str, what: &str, n: u64) -> Duration {
        self.latency(self.scenario.latency.api, &api_key(subject, what), 2 * n)
    }

    /// How long machine `id`'s `boot`-th boot (from 1) takes, from start to `started`.
    pub fn boot_time(&self, id: &str, boot: u64) -> Duration {
        self.latency(self.scenario.latency.boot, &format!("{id}/boot"), boot)
    }

    /// How long machine `id`'s `stop`-th stop (from 1; an update stops the machine too) takes, from
    /// the signal to `stopped`, unless its kill timeout ends it first.
    pub fn stop_time(&self, id: &str, stop: u64) -> Duration {
        self.latency(self.scenario.latency.stop, &format!("{id}/stop"), stop)
    }

    /// From the moment machine `id` is started (for the `boot`-th time since the world was built, 1 for
    /// the first boot of a machine created or updated during the deploy) to its first check result,
    /// which is passing on a healthy release: the grace period of the check with the longest one, plus
    /// this machine's phase within one interval of that check. Zero for an app without checks (a machine
    /// passes as soon as it is started).
    pub fn check_delay(&self, id: &str, boot: u64) -> Duration {
        let Some(spec) = self.checks.iter().max_by_key(|c| c.grace_period) else {
            return Duration::ZERO;
        };
        let phase = unit(self.scenario.seed, id, 1_000_000 + boot);
        spec.grace_period + spec.interval.mul_f64(phase)
    }

    /// How long each long-lived connection of machine `id` stays open once the machine is cordoned,
    /// for the boot it is in now (empty for a machine that does not exist).
    pub fn connection_lifetimes(&self, id: &str) -> Vec<Duration> {
        let st = self.lock();
        let Some(m) = st.machines.get(id) else { return vec![] };
        let n = u64::from(self.scenario.traffic.connections);
        (0..n)
            .map(|k| {
                self.latency(self.scenario.traffic.connection_lifetime, &m.id, 2_000_000 + m.boots * 64 + k)
            })
            .collect()
    }

    /// How many API calls `what` were made on no machine in particular (a list, a count of many
    /// machines' connections) so far.
    pub fn calls_on_no_machine(&self, what: &str) -> u64 {
        self.lock().global_ops.get(what).copied().unwrap_or(0)
    }

    /// The ids of the next `n` machines created in this world (by any app: creation numbers are shared),
    /// in the order they will be created. Which clone gets which id depends on the order creations
    /// complete; the set does not.
    pub fn next_ids(&self, app: &str, n: usize) -> Vec<String> {
        let next = self.lock().next_index;
        (0..n as u64).map(|i| machine_id(self.scenario.seed, app, next + i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Scenario, SimWorld};
    use cutover_core::{CheckKind, CheckSpec, MachineState, Platform, Release};
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::Instant;

    const DAY: Duration = Duration::from_secs(86_400);

    fn world(scenario: &str) -> Arc<SimWorld> {
        let check = CheckSpec {
            name: "health".into(),
            kind: CheckKind::Tcp,
            grace_period: Duration::from_secs(5),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            port: None,
        };
        SimWorld::new(Scenario::parse(scenario).unwrap(), "app", "img:v1", vec![check])
    }

    /// The virtual clock wakes on whole milliseconds: a wait ends within 1 ms after the model's instant.
    fn assert_close(waited: Duration, model: Duration, id: &str) {
        assert!(
            waited >= model && waited - model < Duration::from_millis(1),
            "machine {id}: first passed {waited:?} after it started, the model says {model:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn check_delay_is_when_an_updated_machine_first_passes() {
        let w = world("seed = 3\n[fleet]\nmachines = 6");
        let p = w.platform("app");
        let v2 = Release { version: 2, image: "img:v2".into() };
        for m in p.list().await.unwrap() {
            p.update(&m.id, &v2).await.unwrap();
            p.wait_state(&m.id, MachineState::Started, DAY).await.unwrap();
            let started = Instant::now();
            p.wait_healthy(&m.id, DAY).await.unwrap();
            assert_close(started.elapsed(), w.check_delay(&m.id, 1), &m.id);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn next_ids_are_the_ids_clones_get_and_their_checks_follow_the_model() {
        let w = world("seed = 4\n[fleet]\nmachines = 3");
        let p = w.platform("app");
        let expected: BTreeSet<String> = w.next_ids("app", 3).into_iter().collect();
        let v2 = Release { version: 2, image: "img:v2".into() };
        let mut got = BTreeSet::new();
        for m in p.list().await.unwrap() {
            let clone = p.clone_from(&m.id, &v2, false).await.unwrap();
            p.wait_state(&clone.id, MachineState::Started, DAY).await.unwrap();
            let started = Instant::now();
            p.wait_healthy(&clone.id, DAY).await.unwrap();
            assert_close(started.elapsed(), w.check_delay(&clone.id, 1), &clone.id);
            got.insert(clone.id);
        }
        assert_eq!(got, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_close_when_their_lifetimes_say() {
        let w =
            world("[fleet]\nmachines = 1\n[traffic]\nconnections = 3\nconnection_lifetime = [1000, 20000]");
        let p = w.platform("app");
        let id = p.list().await.unwrap()[0].id.clone();
        let lifetimes = w.connection_lifetimes(&id);
        assert_eq!(lifetimes.len(), 3);
        p.cordon(&id).await.unwrap();
        let cordoned = Instant::now();
        // Each count is taken when its call returns; step finely enough to see every close.
        loop {
            let open = p.connections(&id).await.unwrap();
            let expected = lifetimes.iter().filter(|l| cordoned + **l > Instant::now()).count() as u32;
            assert_eq!(open, expected, "{:?} after the cordon", cordoned.elapsed());
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(7)).await;
        }
        assert!(cordoned.elapsed() >= *lifetimes.iter().max().unwrap());
    }
}
