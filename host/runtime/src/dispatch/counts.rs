//! A drain's counts of open connections, taken together where the platform can.
//!
//! Each machine of a drain polls its own count every `poll` ms. Counted one call each, a drain of
//! 10,000 machines queues 10,000 round trips per poll for the operation slots, behind the stops and
//! destroys of the machines already idle, and a machine that went idle waits a whole such round to
//! be seen. On a platform that counts many machines in one request
//! ([`Platform::counts_together`]: a proxy's table, a metrics query), the polls due together join one
//! request instead: the first machine to ask takes a slot and, once it has one, asks for every
//! machine that queued meanwhile. There, every machine polls on the same grid (multiples of `poll`
//! from the call's start), so machines that began draining at different times still ask together.

use super::slots::{Slots, rank};
use cutover_core::{ErrorKind, OpError, Platform};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The counts of one pipeline call's drains.
pub(super) struct Counts<'a> {
    platform: &'a dyn Platform,
    /// Where the polls' grid starts.
    epoch: Instant,
    state: Mutex<Queue>,
}

/// The machines waiting for the next request.
#[derive(Default)]
struct Queue {
    waiting: Vec<(String, oneshot::Sender<Result<u32, OpError>>)>,
    /// Whether one of them is getting a slot to make that request.
    leading: bool,
}

/// Held by the machine getting a slot for the next request: if it is dropped before it took the queue
/// (the call interrupted), the others are released, to ask again at their next poll.
struct Leading<'c, 'a> {
    counts: &'c Counts<'a>,
    took: bool,
}

impl Leading<'_, '_> {
    /// The machines queued so far; whoever queues next leads the next request.
    fn take(mut self) -> Vec<(String, oneshot::Sender<Result<u32, OpError>>)> {
        let mut q = self.counts.lock();
        q.leading = false;
        self.took = true;
        std::mem::take(&mut q.waiting)
    }
}

impl Drop for Leading<'_, '_> {
    fn drop(&mut self) {
        if !self.took {
            let mut q = self.counts.lock();
            q.leading = false;
            q.waiting.clear();
        }
    }
}

impl<'a> Counts<'a> {
    pub(super) fn new(platform: &'a dyn Platform) -> Self {
        Self { platform, epoch: Instant::now(), state: Mutex::new(Queue::default()) }
    }

    /// When a machine polling every `poll` counts next: `poll` from now where each machine is counted
    /// on its own; where machines are counted together, the grid's next point after now.
    pub(super) fn next_poll(&self, poll: Duration) -> Instant {
        let now = Instant::now();
        if !self.platform.counts_together() || poll.is_zero() {
            return now + poll;
        }
        let ticks = (now - self.epoch).as_nanos() / poll.as_nanos() + 1;
        let since = u64::try_from(ticks * poll.as_nanos()).unwrap_or(u64::MAX);
        self.epoch + Duration::from_nanos(since)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Machine `id`'s open connections, through one of `slots` (a poll's rank: below any operation).
    pub(super) async fn count(&self, id: &str, slots: &Slots) -> Result<u32, OpError> {
        if !self.platform.counts_together() {
            let _slot = slots.acquire(rank(false, 0, true)).await;
            return self.platform.connections(id).await;
        }
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut q = self.lock();
            q.waiting.push((id.to_string(), tx));
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            let leading = Leading { counts: self, took: false };
            // Machines whose poll falls on the same instant wake one after the other: let them queue
            // before a free slot sends the request with this machine alone.
            tokio::task::yield_now().await;
            let _slot = slots.acquire(rank(false, 0, true)).await;
            // Everyone who queued while the slot was awaited.
            let batch = leading.take();
            let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
            match self.platform.connections_of(&ids).await {
                Ok(counts) => {
                    for ((_, tx), count) in batch.into_iter().zip(counts) {
                        let _ = tx.send(count);
                    }
                }
                Err(e) => {
                    let e = per_machine(e);
                    for (_, tx) in batch {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
        // A request abandoned (or one answering fewer machines than asked) is a failed count: the
        // machine asks again at its next poll.
        rx.await.unwrap_or_else(|_| Err(OpError::new(ErrorKind::Platform, "the count was abandoned")))
    }
}

/// What a failed request for many machines means for each: the same, except that a request the
/// platform did not find says nothing of the machines (a drain would take `not-found` for a machine
/// gone, with nothing left to drain), so it is a failed count, asked again at the next poll.
pub(super) fn per_machine(e: OpError) -> OpError {
    if e.kind == ErrorKind::NotFound {
        OpError::new(ErrorKind::Platform, format!("counting connections: {}", e.message))
    } else {
        e
    }
}
