//! Logging, phases and progress. Everything goes to the host: the deploy log the user watches and the
//! event record kept in the journal. A strategy has no stdout worth writing to (WASI gives it none), so
//! these are the only way to say what it is doing.
//!
//! ```ignore
//! use cutover_sdk::{info, log};
//! log::phase("batch 1/3");
//! info!("moving {} machine(s)", ids.len());
//! log::progress(1, 3);
//! ```

use crate::runtime::{self, Level};

/// A line at `debug` level.
pub fn debug(message: &str) {
    runtime::log(Level::Debug, message);
}

/// A line at `info` level.
pub fn info(message: &str) {
    runtime::log(Level::Info, message);
}

/// A line at `warn` level: something went wrong and the strategy carries on.
pub fn warn(message: &str) {
    runtime::log(Level::Warn, message);
}

/// A line at `error` level: the strategy is about to give up.
pub fn error(message: &str) {
    runtime::log(Level::Error, message);
}

/// Start a named phase ("create green", "app: batch 2/3"): the UI shows it and the journal times it.
pub fn phase(name: &str) {
    runtime::phase(name);
}

/// Progress within the current phase, in whatever unit the phase counts (machines, batches).
pub fn progress(done: usize, total: usize) {
    runtime::progress(saturate(done), saturate(total));
}

/// A count for the contract's `u32` progress, which a fleet never outgrows in practice.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A duration for logs: "5m", "1m30s", "2.5s", "250ms".
pub fn human(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 10_000 && !ms.is_multiple_of(1000) {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    // Whole seconds from 10 s on: "45s", "1m26s", "1h30m".
    let s = (ms + 500) / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out += &format!("{n}{unit}");
        }
    }
    out
}

/// Log a formatted line at `debug` level: `debug!("{n} machine(s) left")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

/// Log a formatted line at `info` level: `info!("{n} machine(s) on v{}", plan.target.version)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

/// Log a formatted line at `warn` level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

/// Log a formatted line at `error` level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}
