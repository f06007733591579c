//! Which of the proxy's threads the current one is. What every request writes (a machine's idle
//! backend connections, its release's statistics) is kept per thread, in shards, so that two of the
//! proxy's threads never write the same cache line: a line written by both moves between the cores
//! on every request, which costs more than the write itself.

use std::cell::Cell;
use std::ops::Deref;

/// Shards of per-thread state: the proxy's threads beyond this many share them.
pub(crate) const SHARDS: usize = 8;

thread_local! {
    /// The current thread's shard (0 off the proxy's own threads).
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the current thread use shard `index` (modulo [`SHARDS`]).
pub(crate) fn set(index: usize) {
    SHARD.with(|s| s.set(index % SHARDS));
}

/// The current thread's shard.
#[inline]
pub(crate) fn current() -> usize {
    SHARD.with(Cell::get)
}

/// A value on cache lines of its own (128 bytes: x86 fetches lines in adjacent pairs), so that
/// writing it never slows a thread working on its neighbour.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
