//! Traffic weights: the split of each step, the weights that follow the machine count while the fleet
//! is promoted (and rolled back), and clearing them at the end.

use cutover_sdk::rollout::{Batch, RollbackHook};
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::traffic::ReleaseWeight;
use cutover_sdk::types::{Machine, Release};
use cutover_sdk::{describe_error, retry, should_run, traffic};
use std::collections::BTreeMap;

/// What the canary steps need to know about the fleet: the release they deploy, and how many machines
/// of each stable release there are (the stable share is split between them in proportion).
pub(crate) struct Fleet<'a> {
    pub(crate) target: &'a Release,
    pub(crate) stable: BTreeMap<u64, usize>,
    pub(crate) stable_machines: usize,
    /// The stable machines' ids: the baseline of the metric gates.
    pub(crate) stable_ids: Vec<String>,
}

/// The serving machines and their releases, while the promotion runs, so that the traffic weights can
/// follow the machine count as routing without weights does.
pub(crate) struct Route {
    serving: BTreeMap<String, u64>,
}

/// A rollback's hook when weights are set: the traffic weights follow each batch back.
pub(crate) struct Follow<'r> {
    pub(crate) route: Option<&'r mut Route>,
    pub(crate) retries: cutover_sdk::Retry,
}

impl RollbackHook for Follow<'_> {
    fn before(&mut self, batch: &Batch) {
        if let Some(route) = self.route.as_mut() {
            route.take(batch);
            route.apply(self.retries);
        }
    }

    fn after(&mut self, batch: &Batch, previous: &Release) {
        if let Some(route) = self.route.as_mut() {
            route.put(batch, previous.version);
        }
    }
}

/// The weights of one step: `percent` to the target release, the rest to the stable releases in
/// proportion to their machines.
pub(crate) fn split(view: &Fleet, percent: u8) -> Vec<ReleaseWeight> {
    let parts: Vec<(u64, usize)> = view.stable.iter().map(|(v, n)| (*v, *n)).collect();
    let mut weights = apportion(&parts, 100 - percent);
    weights.push(ReleaseWeight { version: view.target.version, percent });
    weights
}

/// Share `total` percent between releases in proportion to their counts, in whole percents that add up
/// to `total` (largest remainder). Nothing when no release has a machine.
pub(crate) fn apportion(parts: &[(u64, usize)], total: u8) -> Vec<ReleaseWeight> {
    let sum: usize = parts.iter().map(|(_, n)| n).sum();
    if sum == 0 {
        return vec![];
    }
    let total = usize::from(total);
    let mut weights: Vec<ReleaseWeight> = parts
        .iter()
        .map(|&(version, n)| ReleaseWeight { version, percent: (total * n / sum) as u8 })
        .collect();
    let given: usize = weights.iter().map(|w| usize::from(w.percent)).sum();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(total * parts[i].1 % sum));
    for &i in order.iter().take(total - given) {
        weights[i].percent += 1;
    }
    weights
}

/// "v1 90% / v2 10%", for logs.
pub(crate) fn shares(weights: &[ReleaseWeight]) -> String {
    weights.iter().map(|w| format!("v{} {}%", w.version, w.percent)).collect::<Vec<_>>().join(" / ")
}

/// "v1" or "v1 (8), v2 (2)", for logs.
pub(crate) fn releases(counts: &BTreeMap<u64, usize>) -> String {
    if counts.len() == 1 {
        return counts.keys().map(|v| format!("v{v}")).collect();
    }
    counts.iter().map(|(v, n)| format!("v{v} ({n})")).collect::<Vec<_>>().join(", ")
}

impl Route {
    /// Every machine serving now: the fleet as listed, plus the canaries.
    pub(crate) fn new(groups: &BTreeMap<String, Vec<Machine>>, canaries: &[String], target: u64) -> Self {
        let mut serving: BTreeMap<String, u64> = groups
            .values()
            .flatten()
            .filter(|m| should_run(m.state) && !m.cordoned)
            .map(|m| (m.id.clone(), m.release.version))
            .collect();
        serving.extend(canaries.iter().map(|id| (id.clone(), target)));
        Self { serving }
    }

    /// A batch leaves rotation.
    pub(crate) fn take(&mut self, batch: &Batch) {
        for m in &batch.machines {
            self.serving.remove(&m.id);
        }
    }

    /// A batch is back in rotation on `version` (the machines that were serving before the deploy).
    pub(crate) fn put(&mut self, batch: &Batch, version: u64) {
        for m in batch.machines.iter().filter(|m| should_run(m.state)) {
            self.serving.insert(m.id.clone(), version);
        }
    }

    /// Machines leave for good.
    pub(crate) fn remove(&mut self, ids: &[String]) {
        for id in ids {
            self.serving.remove(id);
        }
    }

    /// Set the weights to the serving machine count of each release. Best effort: a failure is logged,
    /// and the batches go on, since a stale split overloads machines but takes none out of service.
    pub(crate) fn apply(&self, retries: cutover_sdk::Retry) {
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for version in self.serving.values() {
            *counts.entry(*version).or_default() += 1;
        }
        let parts: Vec<(u64, usize)> = counts.into_iter().collect();
        let weights = apportion(&parts, 100);
        if weights.is_empty() {
            return;
        }
        match retry(retries, "setting traffic weights", || traffic::set_weights(&weights)) {
            Ok(()) => {
                runtime::log(Level::Debug, &format!("traffic weights by machine count: {}", shares(&weights)))
            }
            Err(e) => runtime::log(
                Level::Warn,
                &format!(
                    "setting traffic weights to {} failed ({}): the previous split stays",
                    shares(&weights),
                    describe_error(&e)
                ),
            ),
        }
    }
}
