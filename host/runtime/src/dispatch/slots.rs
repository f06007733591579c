//! The operation slots of one pipeline call, and who gets a slot that frees up.
//!
//! With a window, a machine about to be uncordoned (coming back into service, freeing its place) and
//! one about to be cordoned (leaving service) queue for the same slot. Handed out first come, first
//! served, the machines already out wait behind new ones being taken out, so each stays out longer,
//! the window fills with machines waiting for a slot, and a roll of thousands slows down: there, a
//! later step goes first. Without a window, nothing waits for a place, and first come, first served
//! starts every machine's long waits (a stop, a boot) as early as it can. Either way a drain's polls
//! of connection counts, which come back every second for as long as a machine drains, yield to
//! operations. Among equals, whoever queued first.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// At most `n` operations at once, a free slot going to the waiter of highest rank ([`rank`]).
pub(super) struct Slots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Queue order, for ties between waiters at the same step.
    next: u64,
    waiting: BinaryHeap<Waiter>,
}

struct Waiter {
    rank: usize,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank.cmp(&other.rank).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

/// One slot, given to the next waiter when dropped.
pub(super) struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// `n` slots (at least one).
    pub(super) fn new(n: usize) -> Self {
        Self { state: Mutex::new(State { free: n.max(1), next: 0, waiting: BinaryHeap::new() }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent counts.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for an operation of rank `rank` ([`rank`]), once one is free and no waiter of higher rank
    /// wants it.
    ///
    /// A slot is handed from the releasing side straight to the waiter, so a waiter dropped after it
    /// was handed one would lose it; the machines of a call are never dropped one by one (the call runs
    /// them all to the end, or is dropped whole with its `Slots`).
    pub(super) async fn acquire(&self, rank: usize) -> Slot<'_> {
        let handed = {
            let mut st = self.lock();
            if st.free > 0 {
                st.free -= 1;
                return Slot { slots: self };
            }
            let (wake, handed) = oneshot::channel();
            let seq = st.next;
            st.next += 1;
            st.waiting.push(Waiter { rank, seq, wake });
            handed
        };
        // The sender lives in `self`, borrowed for as long as this waits: it cannot be dropped unsent.
        let _ = handed.await;
        Slot { slots: self }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut st = self.slots.lock();
        while let Some(next) = st.waiting.pop() {
            if next.wake.send(()).is_ok() {
                return;
            }
        }
        st.free += 1;
    }
}

/// The rank of step `k` of a pipeline's steps (see the module's introduction): with a window the step's
/// index, so later steps go first; without, all operations alike; a drain's poll below any operation.
pub(super) fn rank(windowed: bool, k: usize, poll: bool) -> usize {
    match (poll, windowed) {
        (true, _) => 0,
        (false, true) => k + 1,
        (false, false) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_highest_rank_then_to_the_first_queued() {
        let slots = Arc::new(Slots::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = slots.acquire(0).await;
        let mut tasks = Vec::new();
        // Queued in this order while the only slot is held: ranks 0, 2, 1, 2.
        for (name, rank) in [("a", 0), ("b", 2), ("c", 1), ("d", 2)] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(rank).await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["b", "d", "c", "a"]);
    }

    #[tokio::test]
    async fn slots_are_not_lost_or_made_up() {
        let slots = Slots::new(2);
        let a = slots.acquire(0).await;
        let b = slots.acquire(0).await;
        assert_eq!(slots.lock().free, 0);
        drop(a);
        drop(b);
        assert_eq!(slots.lock().free, 2, "with nobody waiting, both come back");
    }

    #[test]
    fn with_a_window_later_steps_rank_higher_and_polls_lowest() {
        assert!(rank(true, 4, false) > rank(true, 0, false));
        assert_eq!(rank(false, 4, false), rank(false, 0, false), "without a window, first come first served");
        assert!(rank(false, 1, true) < rank(false, 0, false));
        assert!(rank(true, 3, true) < rank(true, 0, false));
    }
}
