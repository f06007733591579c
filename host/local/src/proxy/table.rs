//! The routing table: which machine a new request (or TCP connection) goes to.
//!
//! Writers ([`Proxy::set_backends`](super::Proxy::set_backends),
//! [`Proxy::set_weights`](super::Proxy::set_weights)) rebuild an immutable snapshot from the
//! routable set and the weights; the request path only reads the current snapshot, picks a release by
//! weight, then the least busy machine of it, and counts the request on that machine before the
//! snapshot's lock is released — which is what makes "cordoned and 0 connections" mean drained. The
//! per-machine records (connection counter, idle connections) outlive a machine's removal from the
//! table, so requests still in flight on it are counted until they finish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use hyper::http::uri::Authority;

use super::affinity::Pin;
use super::body::ReqBody;
use super::counters::ActiveGuard;
use super::lean::BackendConn;
use super::pool::Pool;
use super::{Backend, Inner};
use crate::stats::Recorder;

/// What the table is built from: the last routable set and weights given, and every machine's
/// record.
#[derive(Default)]
pub(super) struct Config {
    pub(super) routable: Vec<Backend>,
    pub(super) weights: Vec<(u64, u8)>,
    /// Bumped whenever the split of new traffic (`shares`) changes: sticky cookies name the split
    /// they were issued under.
    pub(super) generation: u64,
    /// The split of the last snapshot: (release, share), by release.
    pub(super) shares: Vec<(u64, u64)>,
    pub(super) machines: HashMap<String, Machine>,
}

/// A machine's connection counter (and its idle connections) outlive its presence in the table
/// (removed machines drain).
pub(super) struct Machine {
    pub(super) active: Arc<AtomicU32>,
    last_routable: Instant,
    addr: SocketAddr,
    pool: Arc<Pool<SendRequest<ReqBody>>>,
    raw: Arc<Pool<BackendConn>>,
}

/// How long a machine's counter is kept once it is idle and out of the routable set.
const FORGET_MACHINE_AFTER: Duration = Duration::from_secs(60);

/// A snapshot of the routing table: the releases that get new traffic, each with its weight.
#[derive(Default)]
pub(super) struct Table {
    pub(super) groups: Vec<Group>,
    total_weight: u64,
    pub(super) seq: AtomicU64,
    /// [`Config::generation`] when the snapshot was built.
    pub(super) generation: u64,
}

/// One release's routable machines and its weight.
pub(super) struct Group {
    pub(super) version: u64,
    pub(super) weight: u64,
    backends: Vec<Arc<Entry>>,
    rr: AtomicUsize,
}

/// One routable machine in a snapshot, with everything the request path needs of it.
pub(super) struct Entry {
    pub(super) machine_id: String,
    /// Its release, and the weights' generation of the snapshot (what a sticky cookie names).
    pub(super) pin: Pin,
    pub(super) addr: SocketAddr,
    /// `addr` as a `Host` header, for requests that came without one.
    pub(super) authority: Authority,
    active: Arc<AtomicU32>,
    /// Its release's traffic statistics.
    pub(super) recorder: Arc<Recorder>,
    pub(super) pool: Arc<Pool<SendRequest<ReqBody>>>,
    /// Its idle connections of the lean path (see `lean`): plain sockets, no hyper client.
    pub(super) raw: Arc<Pool<BackendConn>>,
}

impl Inner {
    /// Rebuilds the snapshot from `cfg` and wakes the requests waiting for a routable machine.
    pub(super) fn rebuild(&self, cfg: &mut Config) {
        let now = Instant::now();
        let Config { routable, weights, generation, shares, machines } = cfg;
        // The split first, so that the snapshot's entries carry its generation.
        let split = split(routable, weights);
        if split != *shares {
            *generation += 1;
            *shares = split;
        }
        let mut groups: Vec<(u64, Vec<Arc<Entry>>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in routable.iter() {
            if !seen.insert(b.machine_id.as_str()) {
                continue;
            }
            let machine = machines.entry(b.machine_id.clone()).or_insert_with(|| Machine {
                active: Arc::new(AtomicU32::new(0)),
                last_routable: now,
                addr: b.addr,
                pool: Arc::default(),
                raw: Arc::default(),
            });
            machine.last_routable = now;
            if machine.addr != b.addr {
                machine.addr = b.addr;
                machine.pool = Arc::default();
                machine.raw = Arc::default();
            }
            let entry = Arc::new(Entry {
                machine_id: b.machine_id.clone(),
                pin: Pin { version: b.version, generation: *generation },
                addr: b.addr,
                authority: Authority::try_from(b.addr.to_string()).expect("a socket address is an authority"),
                active: machine.active.clone(),
                recorder: self.stats.recorder(b.version),
                pool: machine.pool.clone(),
                raw: machine.raw.clone(),
            });
            match groups.iter_mut().find(|(v, _)| *v == b.version) {
                Some((_, list)) => list.push(entry),
                None => groups.push((b.version, vec![entry])),
            }
        }
        machines.retain(|_, m| {
            m.active.load(Ordering::Acquire) > 0 || now.duration_since(m.last_routable) < FORGET_MACHINE_AFTER
        });
        // A machine out of rotation gets no new requests: close its idle connections.
        for (id, m) in machines.iter() {
            if !seen.contains(id.as_str()) {
                m.pool.clear();
                m.raw.clear();
            }
        }

        let groups: Vec<Group> = groups
            .into_iter()
            .map(|(v, backends)| {
                let weight = shares.iter().find(|(s, _)| *s == v).map_or(0, |&(_, w)| w);
                Group { version: v, weight, backends, rr: AtomicUsize::new(0) }
            })
            .filter(|g| g.weight > 0)
            .collect();
        let total_weight = groups.iter().map(|g| g.weight).sum();
        let table = Arc::new(Table { groups, total_weight, seq: AtomicU64::new(0), generation: *generation });
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
        self.changed.notify_waiters();

        let keep: Vec<u64> = routable.iter().map(|b| b.version).chain(weights.iter().map(|w| w.0)).collect();
        self.stats.prune(|v| keep.contains(&v));
    }

    /// Picks a machine for a new request/connection, avoiding `tried` ones when it can, and counts
    /// it as active on that machine before the table lock is released. `pin`: a sticky session's
    /// (see `affinity`); its release and newer ones are preferred for a retry too. `None`: nothing
    /// routable.
    fn try_pick(&self, tried: &[Arc<Entry>], pin: Option<Pin>) -> Option<(Arc<Entry>, ActiveGuard)> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let group = match pin {
            None => table.choose()?,
            Some(pin) => table.choose_pinned(pin)?,
        };
        let at_least = pin.map_or(0, |p| p.version);
        let entry = group
            .least_busy(tried)
            .or_else(|| {
                table.groups.iter().filter(|g| g.version >= at_least).find_map(|g| g.least_busy(tried))
            })
            .or_else(|| table.groups.iter().find_map(|g| g.least_busy(tried)))
            .or_else(|| group.least_busy(&[]))?;
        let guard = ActiveGuard::new(&entry.active);
        drop(table);
        Some((entry, guard))
    }

    /// [`Inner::try_pick`], waiting up to `empty_table_wait` for the table to hold a machine.
    pub(super) async fn pick(
        &self,
        tried: &[Arc<Entry>],
        pin: Option<Pin>,
    ) -> Option<(Arc<Entry>, ActiveGuard)> {
        // The usual case, without registering for table changes.
        if let Some(picked) = self.try_pick(tried, pin) {
            return Some(picked);
        }
        let deadline = tokio::time::Instant::now() + self.opts.empty_table_wait;
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            if let Some(picked) = self.try_pick(tried, pin) {
                return Some(picked);
            }
            if *self.shutdown.borrow() || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

/// Each routable release's share of new traffic, by release (0% ones left out). Listed releases
/// share by their percentages. When none of them has a routable machine (or all of theirs are 0%),
/// the unlisted routable releases share by machine count; and when only 0% releases are routable
/// they do too, rather than refuse the traffic.
fn split(routable: &[Backend], weights: &[(u64, u8)]) -> Vec<(u64, u64)> {
    let mut counts: Vec<(u64, u64)> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for b in routable.iter().filter(|b| ids.insert(b.machine_id.as_str())) {
        match counts.iter_mut().find(|(v, _)| *v == b.version) {
            Some((_, n)) => *n += 1,
            None => counts.push((b.version, 1)),
        }
    }
    let listed = |version: u64| weights.iter().find(|(v, _)| *v == version).map(|&(_, w)| u64::from(w));
    let any_positive = counts.iter().any(|(v, _)| listed(*v).is_some_and(|w| w > 0));
    let any_unlisted = counts.iter().any(|(v, _)| listed(*v).is_none());
    let mut shares: Vec<(u64, u64)> = counts
        .into_iter()
        .map(|(v, count)| {
            let weight = match listed(v) {
                _ if weights.is_empty() => count,
                Some(w) if any_positive => w,
                None if any_positive => 0,
                Some(_) if any_unlisted => 0,
                _ => count,
            };
            (v, weight)
        })
        .filter(|&(_, w)| w > 0)
        .collect();
    shares.sort_unstable();
    shares
}

impl Table {
    /// The release a new request goes to: a low-discrepancy (golden ratio) sequence over the
    /// cumulative weights, so shares are exact over short runs and canary requests are spread out.
    pub(super) fn choose(&self) -> Option<&Group> {
        match self.groups.len() {
            0 => None,
            1 => self.groups.first(),
            _ => {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                let frac = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
                let mut point = (frac * self.total_weight) >> 32;
                for g in &self.groups {
                    if point < g.weight {
                        return Some(g);
                    }
                    point -= g.weight;
                }
                self.groups.last()
            }
        }
    }
}

impl Group {
    /// The machine with the fewest active connections outside `exclude`; ties go round-robin.
    fn least_busy(&self, exclude: &[Arc<Entry>]) -> Option<Arc<Entry>> {
        let n = self.backends.len();
        let start = if n > 1 { self.rr.fetch_add(1, Ordering::Relaxed) } else { 0 };
        let mut best: Option<(&Arc<Entry>, u32)> = None;
        for i in 0..n {
            let e = &self.backends[(start + i) % n];
            if exclude.iter().any(|x| x.machine_id == e.machine_id) {
                continue;
            }
            let active = e.active.load(Ordering::Relaxed);
            if best.is_none_or(|(_, b)| active < b) {
                best = Some((e, active));
            }
        }
        best.map(|(e, _)| e.clone())
    }
}

#[cfg(test)]
impl Table {
    /// A snapshot of releases `(version, weight)` without machines, for the choice alone.
    pub(super) fn of_weights(weights: &[(u64, u64)], generation: u64) -> Table {
        let groups: Vec<Group> = weights
            .iter()
            .map(|&(version, weight)| Group { version, weight, backends: vec![], rr: AtomicUsize::new(0) })
            .collect();
        let total_weight = groups.iter().map(|g| g.weight).sum();
        Table { groups, total_weight, seq: AtomicU64::new(0), generation }
    }
}
