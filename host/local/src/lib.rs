//! The local platform: the app's machines as real processes on this computer, behind a real proxy.
//!
//! The work happens in a daemon that outlives any one `cutover` command, because machines must keep
//! serving between deploys; the rest of the crate is how commands reach it. Its modules:
//!
//! - [`daemon`]: the daemon itself — its HTTP API, its fleet of machine processes, their health
//!   checks, and one proxy per app.
//! - [`proxy`]: the proxy in front of an app's machines, which the daemon runs: routing by weight and
//!   load, connection counts for drains, retries that keep a deploy free of failed requests.
//! - [`stats`]: per-release request counts, errors and latencies, which the proxy records.
//! - `shard`: which of the proxy's threads is running, for the state it keeps per thread.
//! - `daemon_handle`: [`LocalDaemon`] finds, starts and stops the daemon of a state directory.
//! - `client`: [`LocalPlatform`], the `Platform` a deploy drives, over the daemon's API (the Machines
//!   API client it shares with the Fly platform, plus the daemon's extra endpoints for what Fly
//!   lacks: weights, connection counts, traffic stats), and an app's first launch.
//!
//! The client and the handle depend on the daemon's shapes (its API's answers, [`AppSpec`]); the
//! daemon depends on neither.
//!
//! [`AppSpec`]: daemon::fleet::AppSpec

mod client;
pub mod daemon;
mod daemon_handle;
pub mod proxy;
mod shard;
pub mod stats;

pub use client::{CAPABILITIES, LocalPlatform};
pub use daemon_handle::LocalDaemon;
