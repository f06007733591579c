//! Sandbox limits: linear memory, a deadline for the whole run, and a CPU budget between host calls.
//!
//! Memory is bounded by a [`wasmtime::ResourceLimiter`] that refuses growth past the limit with a typed
//! error (rather than letting `memory.grow` return -1, which a guest would turn into an anonymous abort).
//! Time is bounded by epoch interruption: a ticker thread advances the engine's epoch every
//! [`TICK`], and each tick that lands while guest code runs asks [`Guard::on_tick`] whether the run is
//! over its deadline or has computed too long since it last called the host. A blocked host call is not
//! interrupted by epochs, so the runtime also races every host call, and the whole run (a guest blocked
//! in WASI's `poll` is in no cutover call), against the deadline; and a host call made after the
//! deadline is refused before it is dispatched, so nothing reaches the platform once the run is over.

pub use cutover_core::Limits;
use cutover_core::duration::display;
use std::time::{Duration, Instant};
use wasmtime::UpdateDeadline;

/// How often the engine's epoch advances; the resolution of the time limits.
pub const TICK: Duration = Duration::from_millis(10);

/// Which limit stopped a strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The guest grew its linear memory past `[cutover.limits] memory`.
    #[error(
        "memory limit: the strategy asked for {wanted_mib} MiB of linear memory, over its limit of \
         {limit_mib} MiB (raise `[cutover.limits] memory` if it really needs more)"
    )]
    Memory {
        /// The limit, in MiB.
        limit_mib: u64,
        /// What the growth asked for in all, in MiB.
        wanted_mib: u64,
    },
    /// The guest computed for longer than `[cutover.limits] cpu_budget` without calling the host.
    #[error(
        "CPU budget: the strategy computed for {} without calling the host, so it was stopped (it is \
         probably stuck in a loop; raise `[cutover.limits] cpu_budget` if it needs longer)",
        display(*budget)
    )]
    CpuBudget {
        /// The budget it ran over.
        budget: Duration,
    },
    /// The whole run outlasted `[cutover.limits] deadline` (real time, even under the simulator).
    #[error(
        "deadline: the strategy run passed its deadline of {} (raise `[cutover.limits] deadline` for \
         longer deploys)",
        display(*deadline)
    )]
    Deadline {
        /// The deadline it passed.
        deadline: Duration,
    },
    /// The run made as many host calls as `[cutover.limits] host_calls` allows.
    #[error(
        "host-call limit: the strategy made {limit} host calls, its limit for one deploy (it is probably \
         calling the host in a loop; raise `[cutover.limits] host_calls` if it really needs more)"
    )]
    HostCalls {
        /// The limit.
        limit: u64,
    },
    /// The run put as many bytes in the journal as `[cutover.limits] journal_mb` allows.
    #[error(
        "journal limit: the deploy journaled {} MiB of events, its limit (the call that would cross it was \
         not made; raise `[cutover.limits] journal_mb` if it really needs more)",
        limit_bytes >> 20
    )]
    JournalBytes {
        /// The limit, in bytes.
        limit_bytes: u64,
    },
}

/// Per-run limit state, kept in the store.
///
/// The CPU budget is measured at tick granularity without reading a clock on every host call (the
/// hot path): each call bumps a counter, and the tick handler notes when the counter last moved.
pub struct Guard {
    limits: Limits,
    started: Instant,
    /// Host calls so far.
    calls: u64,
    /// `calls` as the last tick saw it.
    calls_seen: u64,
    /// The first tick that saw no new host call since the guest last called the host.
    quiet_since: Instant,
}

impl Guard {
    /// Start the clock on a run under `limits`.
    pub fn new(limits: Limits) -> Self {
        let now = Instant::now();
        Self { limits, started: now, calls: 0, calls_seen: 0, quiet_since: now }
    }

    /// The limits this run is held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// When the run must end.
    pub fn deadline_at(&self) -> Instant {
        self.started + self.limits.deadline
    }

    /// Whether the run's deadline has passed, by the clock itself (the watchdog's flag may lag it).
    #[inline]
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline_at()
    }

    /// The error that ends a run at its deadline.
    pub fn deadline_exceeded(&self) -> LimitExceeded {
        LimitExceeded::Deadline { deadline: self.limits.deadline }
    }

    /// A host call just returned: the CPU budget starts again.
    #[inline]
    pub fn host_returned(&mut self) {
        self.calls += 1;
    }

    /// Refuse a host call once the run has made as many as it may (checked before the call is
    /// dispatched, so the one over the limit reaches neither the platform nor the journal).
    #[inline]
    pub fn admit_call(&self) -> Result<(), LimitExceeded> {
        if self.calls >= self.limits.host_calls {
            return Err(LimitExceeded::HostCalls { limit: self.limits.host_calls });
        }
        Ok(())
    }

    /// Restart the CPU budget now (the guest is about to run after host work such as instantiation).
    pub fn restart_budget(&mut self) {
        self.quiet_since = Instant::now();
        self.calls_seen = self.calls;
    }

    /// Called on each epoch tick while the guest runs.
    pub fn on_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let now = Instant::now();
        if now >= self.deadline_at() {
            return Err(self.deadline_exceeded().into());
        }
        if self.calls != self.calls_seen {
            self.calls_seen = self.calls;
            self.quiet_since = now;
        }
        if now.duration_since(self.quiet_since) > self.limits.cpu_budget {
            return Err(LimitExceeded::CpuBudget { budget: self.limits.cpu_budget }.into());
        }
        // Yield so other tasks (timers, renderers) run while a guest computes.
        Ok(UpdateDeadline::Yield(1))
    }
}

impl wasmtime::ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            return Err(LimitExceeded::Memory {
                limit_mib: self.limits.memory_bytes >> 20,
                wanted_mib: (desired as u64).div_ceil(1 << 20),
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real strategy.
        Ok(desired <= 1_000_000)
    }
}
