//! Traffic weights: the split of each step, and how it reads in the log.

use cutover_sdk::traffic::ReleaseWeight;
use cutover_sdk::types::Release;
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
