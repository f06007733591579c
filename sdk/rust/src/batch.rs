//! Batches: how many machines may be out of service at once, and the fleet cut to that size. The host
//! runs each batch call concurrently, so a strategy's batches are its unit of risk, not of speed.

use crate::types::{Machine, MaxUnavailable};
use std::collections::BTreeMap;

/// Machines in one batch: a count as given, or a fraction of the group rounded up; at least one.
pub fn batch_size(max: &MaxUnavailable, group_len: usize) -> usize {
    let n = match *max {
        MaxUnavailable::Count(n) => n as usize,
        MaxUnavailable::Fraction(f) => (f * group_len as f64).ceil() as usize,
    };
    n.max(1)
}

/// `items` in batches of `size` (at least one item each), in order.
pub fn batches<T: Clone>(items: &[T], size: usize) -> Vec<Vec<T>> {
    items.chunks(size.max(1)).map(<[T]>::to_vec).collect()
}

/// The fleet by process group, each group in the order `list` gave it. `max_unavailable` applies per
/// group (as on Fly), so batches are cut within a group.
pub fn by_group(fleet: Vec<Machine>) -> BTreeMap<String, Vec<Machine>> {
    let mut groups: BTreeMap<String, Vec<Machine>> = BTreeMap::new();
    for m in fleet {
        groups.entry(m.process_group.clone()).or_default().push(m);
    }
    groups
}
