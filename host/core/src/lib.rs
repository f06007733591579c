//! The vocabulary every layer of cutover speaks, and nothing that runs it: machines and releases, the
//! one platform error, the [`Platform`] trait, the host's side of the strategy contract (plans,
//! parameters), the event record of a deploy, sandbox policy (limits and grants), durations as fly.toml
//! writes them, and two operating-system helpers.
//!
//! It depends on neither wasmtime nor the config, so the simulator, the local platform and the journal
//! build and test without a WebAssembly engine, and no lower layer can reach up into a higher one.
//!
//! Modules, from the bottom up (each imports only those above it in this list):
//!
//! - [`error`]: [`OpError`] and [`ErrorKind`], the one failure of a platform operation, which is also
//!   what a strategy receives.
//! - [`machine`]: [`Machine`], [`Release`], [`MachineState`], health checks and how to stop a machine.
//! - [`duration`]: durations as fly.toml writes them ("10s", "1m30s" or milliseconds), parsed and shown.
//! - [`limits`]: [`Limits`], a strategy run's memory, deadline and CPU budget.
//! - [`os`]: whether a process is alive, and writing a file atomically.
//! - [`contract`]: the host's own types for the strategy contract (parameters, the deploy plan), free of
//!   any WIT version.
//! - [`release_command`]: `[deploy] release_command` as every platform runs it: what to run, how it
//!   may end, where its output goes.
//! - [`judge`]: the statistical judge (Mann–Whitney U, Hodges–Lehmann), canary against baseline.
//! - [`metrics`]: metrics series and the [`MetricsSource`](metrics::MetricsSource) that answers a
//!   strategy's queries.
//! - [`platform`]: the [`Platform`] trait every platform implements, its traffic types, leases, launches,
//!   and [`list_with_retries`].
//! - [`pipeline`]: the steps of `machines.pipeline`, each machine going on as soon as its own step
//!   is done, and what a pipeline answers.
//! - [`events`]: the deploy's event record: every [`HostCall`](events::HostCall), its reply, and the
//!   sinks that receive them.
//! - [`grants`]: [`Grants`], which contract calls and which machines a strategy may change.
//! - [`judge`]: the statistical judge of a canary against its baseline (Mann–Whitney U with the
//!   Hodges–Lehmann shift, as Kayenta), free of everything else here.
//! - [`proxy_limits`]: [`ProxyLimits`], what the local platform's proxy allows one client, and
//!   [`StickySessions`], whether it keeps a client on one release.

pub mod contract;
pub mod duration;
pub mod error;
pub mod events;
pub mod grants;
pub mod judge;
pub mod limits;
pub mod machine;
pub mod metrics;
pub mod os;
pub mod pipeline;
pub mod platform;
pub mod proxy_limits;
pub mod release_command;

pub use error::{ErrorKind, OpError};
pub use grants::Grants;
pub use limits::Limits;
pub use machine::{Check, CheckKind, CheckSpec, CheckStatus, Machine, MachineState, Release, StopSpec};
pub use platform::{
    Capabilities, EmptyApp, LIST_ATTEMPTS, LaunchLog, LaunchPlan, Lease, ListFailed, Platform, ReleaseWeight,
    TrafficStats, list_with_retries,
};
pub use proxy_limits::{ProxyLimits, StickySessions};
pub use release_command::{ReleaseCommand, ReleaseCommandError, ReleaseLog, ReleaseVm};
