//! `cutover:strategy@0.2.x`, the latest contract: the generated bindings and the host side, which
//! every contract version reaches (0.1's imports delegate here, see `v0_1`).
//!
//! One module per contract version, as Zed's extension host keeps one per extension API version: the
//! host is implemented once, against the latest, and each older version converts to it in its own
//! module. This module only translates between WIT types and the host's own (`platform`, `contract`,
//! `events`, `metrics`, `judge`); all behaviour lives in the dispatcher.

mod convert;
mod host;

/// The bindings wasmtime generates from `wit/v0.2/strategy.wit`. Their documentation is the WIT's own
/// (it is copied into them where the WIT has any); the rest is generated glue, so it is exempt from the
/// rule that every public item is documented.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2",
        world: "strategy",
        // Calls that never wait are plain host functions: no future, no fiber switch, so a strategy can
        // log, read the clock or a parameter for about the price of a bare wasmtime call.
        imports: {
            "cutover:strategy/runtime.log": trappable,
            "cutover:strategy/runtime.phase": trappable,
            "cutover:strategy/runtime.progress": trappable,
            "cutover:strategy/runtime.now": trappable,
            "cutover:strategy/runtime.param": trappable,
            "cutover:strategy/traffic.capabilities": trappable,
            default: async | trappable,
        },
        exports: { default: async },
    });
}

pub use bindings::*;

pub use convert::{error_from_wit, info_from_wit, plan_to_wit};
