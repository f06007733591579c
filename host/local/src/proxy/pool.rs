//! Each machine's idle keep-alive connections.
//!
//! HTTP mode picks a machine per request, so a client's keep-alive connection is not tied to one
//! backend connection; instead each machine keeps the connections its finished requests left idle,
//! and the next request routed there takes one rather than paying a new connection. A connection
//! idle too long is dropped instead of reused, before the app's own keep-alive timeout could close
//! it under a request. The pool does not know what bodies its connections carry.
//!
//! A proxy on threads of its own keeps one set of idle connections per thread (a shard): a
//! connection is driven by a task on the thread that opened it, so a request taking it from another
//! thread would have that thread woken for every read and write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;

use super::lock;
use crate::shard::{self, Padded, SHARDS};

/// Idle HTTP/1.1 connections to one machine, the most recently used last. A connection goes back in
/// when its response body has been read to the end, and is handed out again only while it has been
/// idle for less than [`ProxyOptions::pool_idle_timeout`](super::ProxyOptions::pool_idle_timeout).
pub(super) struct Pool<C> {
    shards: [Shard<C>; SHARDS],
}

/// A connection a pool can hold: it says when it can no longer carry a request.
pub(super) trait Reusable {
    /// Whether the connection is known to be closed (or otherwise unusable).
    fn is_closed(&self) -> bool;
}

impl<B> Reusable for SendRequest<B> {
    fn is_closed(&self) -> bool {
        SendRequest::is_closed(self)
    }
}

/// One thread's idle connections to a machine, each with when it went idle; padded, since the
/// threads take and give back connections to the same machine all the time.
type Shard<C> = Padded<Mutex<Vec<(C, Instant)>>>;

impl<C> Default for Pool<C> {
    fn default() -> Self {
        Pool { shards: std::array::from_fn(|_| Padded(Mutex::new(Vec::new()))) }
    }
}

/// The current thread's shard of `pool`.
fn shard<C>(pool: &Pool<C>) -> &Shard<C> {
    &pool.shards[shard::current()]
}

/// Idle connections kept per machine at most.
const MAX_IDLE_PER_MACHINE: usize = 256;

impl<C: Reusable> Pool<C> {
    /// The most recently used idle connection that is neither closed nor idle too long.
    pub(super) fn checkout(&self, idle_timeout: Duration) -> Option<C> {
        let now = Instant::now();
        let mut idle = lock(shard(self));
        while let Some((sender, since)) = idle.pop() {
            if !sender.is_closed() && now.duration_since(since) < idle_timeout {
                return Some(sender);
            }
        }
        None
    }

    /// Gives a connection back, idle from now.
    pub(super) fn checkin(&self, sender: C, idle_timeout: Duration) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = lock(shard(self));
        // Oldest first: drop the ones that have been idle too long, so they are closed.
        let stale = idle.iter().take_while(|(_, since)| now.duration_since(*since) >= idle_timeout).count();
        idle.drain(..stale);
        if idle.len() < MAX_IDLE_PER_MACHINE {
            idle.push((sender, now));
        }
    }

    /// Closes every idle connection (the machine left the rotation: no request will take them).
    pub(super) fn clear(&self) {
        for shard in &self.shards {
            lock(shard).clear();
        }
    }
}

/// A pooled connection to give back once its response is read.
pub(super) struct Checkin<C> {
    pub(super) sender: C,
    pub(super) pool: Arc<Pool<C>>,
    pub(super) idle_timeout: Duration,
}

impl<C: Reusable> Checkin<C> {
    pub(super) fn done(self) {
        self.pool.checkin(self.sender, self.idle_timeout);
    }
}
