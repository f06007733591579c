//! The vocabulary every layer of cutover speaks, and nothing that runs it: machines and releases, the
//! one platform error, the [`Platform`] trait, the host's side of the strategy contract (plans,
//! parameters), the event record of a deploy, sandbox policy (limits and grants), durations as fly.toml
//! writes them, and two operating-system helpers.
//!
//! It depends on neither wasmtime nor the config, so the simulator, the local platform and the journal
//! build and test without a WebAssembly engine, and no lower layer can reach up into a higher one.

pub mod contract;
pub mod duration;
pub mod error;
pub mod events;
pub mod grants;
pub mod limits;
pub mod machine;
pub mod os;
pub mod platform;

pub use error::{ErrorKind, OpError};
pub use grants::Grants;
pub use limits::Limits;
pub use machine::{Check, CheckKind, CheckSpec, CheckStatus, Machine, MachineState, Release, StopSpec};
pub use platform::{
    Capabilities, EmptyApp, LIST_ATTEMPTS, LaunchLog, LaunchPlan, Lease, ListFailed, Platform, ReleaseWeight,
    TrafficStats, list_with_retries,
};
