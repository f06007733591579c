//! Configuration: an existing `fly.toml`, read as is, plus cutover's own options.
//!
//! cutover's options live in a `[cutover]` table of fly.toml or, to leave fly.toml untouched for
//! flyctl, in a `cutover.toml` beside it (the same keys, at top level). Errors name the file, the key and
//! what was expected; keys neither Fly nor cutover knows are warnings, since fly.toml gains keys over time.
//!
//! Every public name lives at the crate root; the modules are how the crate is read, one concept each:
//!
//! - `config`: [`Config`], the resolved configuration a deploy uses, and the command line's overrides.
//! - `defaults`: flyctl's defaults for what fly.toml leaves out.
//! - `error`: [`ConfigError`].
//! - `platform`, `strategy`: [`PlatformKind`] and [`StrategyRef`], what a config (or the command line)
//!   chooses.
//! - `options`: the `[cutover]` table ([`CutoverOptions`], [`LocalOptions`], [`FlyConfig`]).
//! - `sandbox`: `[[cutover.sandbox]]` ([`SandboxPolicy`], [`CutoverOptions::sandbox_for`]).
//! - `raw`: the files' shapes exactly as serde reads them, before any default or check.
//! - `keys`: unknown keys, and the Fly keys accepted silently.
//! - `checks`: the four ways fly.toml declares a health check, made one list.
//! - `params`: strategy parameters ([`Config::strategy_params`]) and `max_unavailable`.
//! - `load`: [`Config::load`], reading fly.toml and `cutover.toml` and putting it all together.

pub use cutover_core::duration;

mod checks;
mod config;
mod defaults;
mod error;
mod keys;
mod load;
mod notify;
mod options;
mod params;
mod platform;
mod raw;
mod release;
mod sandbox;
mod strategy;

pub use config::Config;
pub use defaults::{
    DEFAULT_CONCURRENCY, DEFAULT_KILL_SIGNAL, DEFAULT_KILL_TIMEOUT, DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_RELEASE_COMMAND_TIMEOUT, DEFAULT_WAIT_TIMEOUT,
};
pub use error::ConfigError;
pub use notify::{NOTIFY_EVENTS, NotifyTarget};
pub use options::{CutoverOptions, FlyConfig, JournalUrl, LocalOptions, MetricsConfig};
pub use params::{param_value, parse_max_unavailable};
pub use platform::PlatformKind;
pub use release::preset as machine_preset;
pub use sandbox::{BUILTINS_USING_METRICS, SandboxPolicy};
pub use strategy::StrategyRef;

#[cfg(test)]
mod tests;
