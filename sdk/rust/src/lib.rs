//! The Rust SDK for cutover deploy strategies.
//!
//! A strategy is a WebAssembly component (wasm32-wasip2) implementing the `cutover:strategy` world:
//! `describe` says what it is and which parameters it takes, `deploy` moves the fleet. This crate holds
//! the bindings of that contract (generated once, here, so that helpers can name its types) and what
//! every strategy ends up writing around them:
//!
//! - [`mod@retry`]: transient `platform` errors retried, batch by batch, for as long as a time budget (the
//!   deploy's `wait_timeout`) allows, without hiding lasting failures;
//! - [`errors`]: a batch failure turned into one error of the right kind, with context;
//! - [`params`]: parameter specs for `describe` and typed getters with defaults for `deploy`;
//! - [`log`]: `info!`/`warn!`/… macros over the host's log, phases and progress;
//! - [`fleet`]: listing, waiting until serving, stopping, cloning, counting connections;
//! - [`batch`]: splitting machines into batches of `max_unavailable`;
//! - [`pipeline`] (contract 0.2): the same steps on many machines, each going on as soon as its own
//!   step is done, with a window of machines under way (a roll within `max_unavailable`);
//! - [`leftover`]: clean-up past the point of no return that the platform would not let finish, tagged
//!   on the machines so they can be found and finished later;
//! - [`green`] and [`rollout`]: the building blocks of the built-in strategies (a green fleet up to the
//!   traffic switch; moving batches in place and rolling them back).
//!
//! A strategy implements [`Guest`] and ends with `cutover_sdk::export!(MyStrategy);`. The built-in
//! strategies (`strategies/` in the repository) are written with nothing else.

/// The generated bindings (in a module of their own: the export macro they define must not meet
/// their re-exports at the crate root). Contract 0.2 (`../../wit/v0.2`) by default; with the
/// `contract-0-1` feature, 0.1 (`../../wit`), for a strategy that must stay a 0.1 component.
pub mod bindings {
    #[cfg(not(feature = "contract-0-1"))]
    wit_bindgen::generate!({
        path: "../../wit/v0.2",
        world: "strategy",
        pub_export_macro: true,
        default_bindings_module: "cutover_sdk::bindings",
    });
    #[cfg(feature = "contract-0-1")]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "strategy",
        pub_export_macro: true,
        default_bindings_module: "cutover_sdk::bindings",
    });
}

#[cfg(not(feature = "contract-0-1"))]
pub use bindings::cutover::strategy::metrics;
pub use bindings::cutover::strategy::{health, machines, runtime, traffic, types};
pub use bindings::{DeployPlan, Error, Guest, StrategyInfo};

pub mod batch;
pub mod errors;
pub mod fleet;
#[cfg(not(feature = "contract-0-1"))]
pub mod gate;
pub mod green;
pub mod leftover;
pub mod log;
pub mod params;
#[cfg(not(feature = "contract-0-1"))]
pub mod pipeline;
pub mod retry;
pub mod rollout;

pub use errors::{describe_error, explain, with_context, with_note, with_prefix};
pub use fleet::{
    NotServing, clear_weights, clone_machines, count_connections, ids, list_machines, refuse_volumes,
    should_run, stop_machines, wait_serving,
};
pub use log::human;
pub use retry::{DEFAULT_RETRIES, Retry, retries, retries_param, retry, with_retries};

/// What a strategy usually needs in scope: `use cutover_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::types::{Machine, MachineError, MachineState, ParamKind, ParamSpec, ParamValue, Release};
    pub use crate::{DeployPlan, Error, Guest, StrategyInfo};
    pub use crate::{debug, error, info, warn};
    pub use crate::{health, machines, params, runtime, traffic};
}

/// Export a type implementing [`Guest`] as the strategy component: `cutover_sdk::export!(MyStrategy);`.
///
/// One per cdylib crate. It wraps the bindings' own export macro so that a strategy needs neither
/// `wit-bindgen` nor the path of the generated types.
#[macro_export]
macro_rules! export {
    ($strategy:ident) => {
        $crate::bindings::export!($strategy with_types_in $crate::bindings);
    };
}
