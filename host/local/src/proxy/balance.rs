//! Client connections spread over the proxy's threads, and the short-lived ones kept together.
//!
//! One thread, the first, accepts every connection: with a thread per core on a host the machines
//! share, threads that each took their share of short-lived connections (a new connection per
//! request) had so little to do that they slept between requests, and each sleep is a wake-up some
//! request waits for (BENCHMARKS.md, issue 20, "short-lived connections on one thread"). So a
//! connection whose first request asks to close after it is served on the accepting thread. One
//! that lasts (a keep-alive connection, or any in TCP mode) goes to the thread serving the fewest
//! connections, ties taken in turn: it stays on its thread for its whole life, so a burst of them
//! (a load balancer's pool, `wrk -c 16`) must not all land on one core. A count is the measure that
//! needs no bookkeeping per request. The connection moves as the plain socket the accept gave, in
//! no event loop yet, before any byte of it is read.

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
    /// Where the search for the least loaded thread starts next, so that ties go round.
    next: AtomicUsize,
}

/// The thread that accepts every connection.
pub(super) const ACCEPTOR: usize = 0;

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
        (Arc::new(Threads { open, inboxes, next: AtomicUsize::new(0) }), receivers)
    }

    /// Each thread's open client connections.
    pub(super) fn open(&self) -> Vec<usize> {
        self.open.iter().map(|n| n.load(Ordering::Relaxed)).collect()
    }

    /// Where a connection the acceptor took is served: on the acceptor when it is not `lasting`
    /// (its first request asks to close after it), else on the thread serving the fewest
    /// connections, ties in turn. Counted there from now on.
    pub(super) fn place(self: &Arc<Self>, lasting: bool) -> Load {
        let index = if lasting {
            let n = self.open.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
            (start..start + n)
                .map(|i| i % n)
                .min_by_key(|&i| self.open[i].load(Ordering::Relaxed))
                .unwrap_or(ACCEPTOR)
        } else {
            ACCEPTOR
        };
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
    fn a_burst_of_lasting_connections_ends_split_evenly() {
        let (threads, _inboxes) = Threads::new(2);
        let loads: Vec<Load> = (0..16).map(|_| threads.place(true)).collect();
        assert_eq!(open(&threads), [8, 8]);
        drop(loads);
        assert_eq!(open(&threads), [0, 0], "a closed connection is no longer counted");
    }

    #[test]
    fn connections_that_close_after_a_request_stay_on_the_acceptor() {
        let (threads, _inboxes) = Threads::new(2);
        let short: Vec<Load> = (0..5).map(|_| threads.place(false)).collect();
        assert!(short.iter().all(|l| l.thread() == ACCEPTOR));
        assert_eq!(open(&threads), [5, 0]);
        let lasting = threads.place(true);
        assert_eq!(lasting.thread(), 1, "a lasting one goes where fewer are served");
    }

    #[test]
    fn one_lasting_connection_at_a_time_goes_round_the_threads() {
        let (threads, _inboxes) = Threads::new(3);
        let seen: Vec<usize> = (0..6).map(|_| threads.place(true).thread()).collect();
        assert_eq!(seen, [0, 1, 2, 0, 1, 2], "each closed before the next opened: ties in turn");
    }
}
