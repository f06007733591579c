//! cutover: a zero-downtime deploy engine whose strategies are sandboxed WebAssembly components.
//!
//! This crate is the `cutover` command line ([`cli`]) and a thin facade over the crates that do the
//! work, re-exported under short names so the end-to-end tests and benchmarks reach the whole engine
//! through one dependency. From the top down (each depends only on crates below it):
//!
//! - [`driver`]: one deploy from config to report (platform, strategy, leases, journal, resume, rollback).
//! - [`config`]: fly.toml and cutover's own options. [`verify`]: `cutover verify`.
//!   [`scaffold`]: `cutover new` and `cutover build`.
//! - [`runtime`]: loading, caching and sandboxing strategy components; the host side of the WIT.
//! - Platforms: [`sim`] (the simulator), [`local`] (processes behind a proxy), [`fly`] (Fly.io), and
//!   [`machines_api`], the one Machines API client the last two share.
//! - [`report`]: a release's timeline picture, from the journal.
//! - [`journal`]: the record of every release and its events. [`builtins`]: the built-in strategy
//!   components. [`loadgen`]: the load `cutover demo` sends.
//! - [`core`]: machines, releases, the `Platform` trait, the contract's host types, events.

pub mod cli;

pub use cutover_builtins as builtins;
pub use cutover_config as config;
pub use cutover_core as core;
pub use cutover_driver as driver;
pub use cutover_fly as fly;
pub use cutover_journal as journal;
pub use cutover_loadgen as loadgen;
pub use cutover_local as local;
pub use cutover_machines_api as machines_api;
pub use cutover_report as report;
pub use cutover_runtime as runtime;
pub use cutover_scaffold as scaffold;
pub use cutover_sim as sim;
pub use cutover_verify as verify;
