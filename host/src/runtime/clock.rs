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
}

impl HostClock {
    /// A clock whose wall time starts at the real current time.
    pub fn real() -> Self {
        let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Self { origin: Instant::now(), epoch_ms }
    }

    /// A clock whose wall time starts at a fixed instant (reproducible runs).
    pub fn fixed(epoch_ms: u64) -> Self {
        Self { origin: Instant::now(), epoch_ms }
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    /// Milliseconds since the clock was made.
    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed().as_millis() as u64
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
