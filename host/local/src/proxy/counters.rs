//! What the proxy counts while it works: the active connections on each machine, the open
//! connections from each client address, and its own open tasks.
//!
//! A machine's count is how the daemon tells a cordoned machine has drained, so it must never miss a
//! request: an [`ActiveGuard`] is taken while the routing table is still locked and released only
//! when the response body (or the upgraded or TCP stream) is done. [`Tasks`] lets
//! [`Proxy::shutdown`](super::Proxy::shutdown) wait for every connection it closes to finish.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One active connection on a machine, for as long as it lives.
pub(super) struct ActiveGuard(Arc<AtomicU32>);

impl ActiveGuard {
    pub(super) fn new(counter: &Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(counter.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open connection tasks, so that shutdown can wait for them.
#[derive(Default)]
pub(super) struct Tasks {
    open: AtomicUsize,
    idle: Notify,
}

/// One open task; dropping it is the task ending.
pub(super) struct TaskGuard(Arc<Tasks>);

impl Tasks {
    pub(super) fn enter(self: &Arc<Self>) -> TaskGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.clone())
    }

    /// Returns once no task is open.
    pub(super) async fn idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Open client connections per client address, so that one address cannot hold every connection
/// the proxy (and the machines behind it) can take.
#[derive(Default)]
pub(super) struct ClientCounts {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One open client connection (HTTP, upgraded or TCP), counted against its address while it lives.
pub(super) struct ClientSlot {
    counts: Arc<ClientCounts>,
    ip: IpAddr,
}

impl ClientCounts {
    /// Counts a new connection from `ip`, or `None` when `ip` already has `max` open.
    pub(super) fn enter(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<ClientSlot> {
        let mut open = super::lock(&self.open);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot { counts: self.clone(), ip })
    }

    /// Connections open from `ip`.
    pub(super) fn open(&self, ip: IpAddr) -> u32 {
        super::lock(&self.open).get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = super::lock(&self.counts.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
