//! The host's clock, as strategies see it.
//!
//! Built on tokio's clock, so under the simulator (a runtime with paused time) it is virtual and a run is
//! reproducible, while on real platforms it is real time. The WASI clocks a guest can read are wired to
//! the same clock (see `sandbox`), so a strategy cannot observe real time behind the host's back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Where the virtual wall clock starts under the simulator: 2026-01-01T00:00:00Z.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

/// A clock anchored at the start of one run.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    origin: Instant,
    epoch_ms: u64,
    simulated: bool,
}

impl HostClock {
    /// A clock whose wall time starts at the real current time.
    pub fn real() -> Self {
        let epoch_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Self { origin: Instant::now(), epoch_ms, simulated: false }
    }

    /// The simulator's clock: tokio time must be paused, and wall time starts at [`SIM_EPOCH_MS`], so a
    /// run is reproducible.
    ///
    /// On a paused clock time moves only while every task waits, never while a strategy computes, so
    /// the host may reuse the time it read when the strategy last waited (see `runtime::dispatch`).
    pub fn simulated() -> Self {
        Self { origin: Instant::now(), epoch_ms: SIM_EPOCH_MS, simulated: true }
    }

    /// The same clock, as if it had been made `ms` earlier: a resumed deploy's clock goes on from
    /// where the interrupted run's journal stops, so times in its events and `now` never go back.
    pub fn continuing(mut self, ms: u64) -> Self {
        if let Some(origin) = self.origin.checked_sub(Duration::from_millis(ms)) {
            self.origin = origin;
            // Real wall time stays real; the simulator's virtual wall time goes on from the journal's.
            if !self.simulated {
                self.epoch_ms = self.epoch_ms.saturating_sub(ms);
            }
        }
        self
    }

    /// Whether this is the simulator's paused clock.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    /// Time since the clock was made.
    #[inline]
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    /// Milliseconds since the clock was made.
    #[inline]
    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed().as_millis() as u64
    }

    /// The wall-clock time (ms since the Unix epoch) at which the clock was made.
    #[inline]
    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.epoch_ms + self.elapsed_ms()
    }
}

impl wasmtime_wasi::HostWallClock for HostClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.epoch_ms) + self.elapsed()
    }
}

impl wasmtime_wasi::HostMonotonicClock for HostClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.elapsed().as_nanos() as u64
    }
}
