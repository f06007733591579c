//! The deploy driver: from a config to a finished (or cleanly failed) deploy.
//!
//! It resolves the strategy (built-in or file) and checks its parameters, decides and opens the
//! platform ([`Target`]), works out the previous and target releases from what the machines run and
//! what the journal remembers, leases the fleet, and hands the strategy a plan. The strategy decides;
//! the driver records the release in the journal before the strategy starts and its outcome when it
//! ends. Resuming a deploy whose process died, rolling back, a dry run, `cutover status` and the demo
//! are the same pieces put together differently.
//!
//! - [`target`]: which platform a command runs on, decided once, and opening it.
//! - [`deploy`]: one deploy or rollback, step by step. [`resume`]: taking an interrupted one up.
//!   [`cleanup`]: finishing the leftovers a succeeded deploy could not clean up.
//! - `release_command`: `[deploy] release_command`, run before the first change, and what a resume
//!   does about it.
//! - [`lease`]: every machine of a deploy leased, refreshed and released.
//! - [`prometheus`]: a strategy's metrics queries sent to the `[cutover.metrics]` server.
//! - [`rollback`]: which release `cutover rollback` returns to.
//! - `sample`: the releases' traffic read and journaled while a strategy runs (for the picture).
//! - [`dry_run`], [`status`], [`demo`], [`local`]: the commands built on the rest.

pub mod cleanup;
mod declared;
pub mod demo;
pub mod deploy;
pub mod dry_run;
mod error;
pub mod lease;
pub mod local;
mod notify;
pub mod prometheus;
mod release_command;
pub mod resume;
pub mod rollback;
mod sample;
pub mod state;
pub mod status;
mod strategy;
pub mod target;
pub mod verify;

pub use cutover_journal::{JOURNAL_URL_ENV, Journal, JournalError, ReleaseRecord, ReleaseStatus};
pub use deploy::{Deploy, DeployReport, Goal, current_release};
pub use error::DeployError;
pub use notify::{FLUSH as NOTIFY_FLUSH, Notifier};
pub use state::StateDir;
pub use strategy::{ResolvedStrategy, resolve_strategy};
pub use target::{OpenedPlatform, PlatformFlags, Purpose, Target};
