//! Client connections spread evenly over the proxy's threads.
//!
//! Every thread accepts on the same listening socket, and the kernel wakes whichever thread it likes:
//! a burst of new keep-alive connections (a load balancer's pool, `wrk -c 16`) can land 12 on one
//! thread and 4 on the other, and a keep-alive connection stays on its thread for its whole life, so
//! one core then does three times the work of the other for as long as those connections last. So a
//! thread that accepts a connection while it serves two or more connections more than the least
//! loaded thread hands it to that thread instead (an HTTP/1.1 connection's work is roughly the same
//! per connection under a load generator or a pool; a count is the measure that needs no
//! bookkeeping per request). The connection moves as the plain socket the accept gave, in no event
//! loop yet, before any byte of it is read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::ProxyLimits;
use super::counters::{ClientSlot, TaskGuard};
use crate::shard::Padded;

/// A connection handed to another thread, with everything its accept counted.
pub(super) struct Handed {
    pub(super) stream: std::net::TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) limits: ProxyLimits,
    pub(super) slot: ClientSlot,
    pub(super) task: TaskGuard,
    pub(super) load: Load,
}

/// Each thread's open client connections, and where to hand it one.
pub(super) struct Threads {
    open: Vec<Padded<AtomicUsize>>,
    inboxes: Vec<mpsc::UnboundedSender<Handed>>,
}

/// One client connection counted on a thread while it lives.
pub(super) struct Load {
    threads: Arc<Threads>,
    index: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.threads.open[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Threads {
    /// `n` threads, and the inbox each is to read handed connections from.
    pub(super) fn new(n: usize) -> (Arc<Threads>, Vec<mpsc::UnboundedReceiver<Handed>>) {
        let (inboxes, receivers) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
        let open = (0..n).map(|_| Padded(AtomicUsize::new(0))).collect();
        (Arc::new(Threads { open, inboxes }), receivers)
    }

    /// Each thread's open client connections.
    pub(super) fn open(&self) -> Vec<usize> {
        self.open.iter().map(|n| n.load(Ordering::Relaxed)).collect()
    }

    /// Where a connection accepted on thread `me` is served: `me`, unless `me` serves two or more
    /// connections more than the least loaded thread. Counted there from now on.
    pub(super) fn place(self: &Arc<Self>, me: usize) -> Load {
        let mine = self.open[me].load(Ordering::Relaxed);
        let (least, fewest) = self
            .open
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .enumerate()
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        let index = if mine > fewest + 1 { least } else { me };
        self.open[index].fetch_add(1, Ordering::Relaxed);
        Load { threads: self.clone(), index }
    }

    /// Hands `stream` to the thread `load` counts it on. A thread that is gone (the proxy is shutting
    /// down) drops it, which closes it.
    pub(super) fn hand(
        &self,
        stream: std::net::TcpStream,
        peer: SocketAddr,
        limits: ProxyLimits,
        slot: ClientSlot,
        task: TaskGuard,
        load: Load,
    ) {
        let index = load.index;
        let _ = self.inboxes[index].send(Handed { stream, peer, limits, slot, task, load });
    }
}

impl Load {
    /// The thread this connection is counted on.
    pub(super) fn thread(&self) -> usize {
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(threads: &Threads) -> Vec<usize> {
        threads.open()
    }

    #[test]
    fn a_burst_accepted_on_one_thread_ends_split_evenly() {
        let (threads, _inboxes) = Threads::new(2);
        let loads: Vec<Load> = (0..16).map(|_| threads.place(0)).collect();
        // Handed on only at two more than the other, so the accepting thread stays ahead by up to two.
        assert_eq!(open(&threads), [9, 7]);
        let moved = loads.iter().filter(|l| l.thread() == 1).count();
        assert_eq!(moved, 7, "the idle thread got its share");
        drop(loads);
        assert_eq!(open(&threads), [0, 0], "a closed connection is no longer counted");
    }

    #[test]
    fn a_thread_within_one_of_the_least_loaded_keeps_what_it_accepts() {
        let (threads, _inboxes) = Threads::new(3);
        let _a = threads.place(1);
        let b = threads.place(1);
        assert_eq!(b.thread(), 1, "one more than the others is still its share");
        let c = threads.place(1);
        assert_ne!(c.thread(), 1, "two more is not");
    }
}
