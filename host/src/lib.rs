//! cutover: a zero-downtime deploy engine whose strategies are sandboxed WebAssembly components.
//!
//! The crate is a library with a thin binary (`main.rs`). Its modules follow the architecture:
//!
//! - [`config`]: fly.toml and cutover's own options.
//! - [`contract`]: the host's types for the strategy contract (`wit/strategy.wit`).
//! - [`runtime`]: loading, caching and sandboxing strategy components; the host side of the WIT.
//! - [`platform`]: where machines live (the simulator now; local processes and Fly.io next).
//! - [`driver`]: one deploy, from config to report.
//! - [`events`]: the record of every host call, which renderers, the journal and replay consume.
//! - [`cli`]: the `cutover` command line.
//! - [`strategies`]: the built-in strategy components embedded at build time.
//! - [`scaffold`]: strategy projects (`cutover new`, `cutover build`).
//! - [`verify`]: a strategy run through the simulator's conformance scenarios, invariants checked.

pub mod cli;
pub mod config;
pub mod contract;
pub mod driver;
pub mod events;
pub mod loadgen;
pub mod os;
pub mod platform;
pub mod runtime;
pub mod scaffold;
pub mod strategies;
pub mod verify;
