//! `cutover:strategy@0.1.x`: its bindings, and its imports converted to the latest contract's host
//! side (`v0_2`), in this one place.
//!
//! 0.2 only added an interface, so 0.1's shared `types` are 0.2's: the bindings reuse 0.2's generated
//! types (`with`), which makes `describe`, `deploy`, machines, checks and errors the same Rust types in
//! both versions (the component model checks types by structure, not by package). What remains are
//! the four types 0.1 declares inside `traffic` and `runtime`, converted in `host`. A 0.1 strategy
//! therefore runs through exactly the code a 0.2 one does: it cannot behave differently by accident.

mod host;

/// The name under which 0.1's type-only `types` interface is linked. Its types are 0.2's (see `with`
/// below), so the bindings link it under 0.2's name; a 0.1 component imports it under this one.
pub(crate) const TYPES_INSTANCE: &str = "cutover:strategy/types@0.1.0";

/// The bindings wasmtime generates from `wit/strategy.wit` (0.1), on 0.2's `types`. Documentation is
/// the WIT's own; the rest is generated glue, exempt from the rule that every public item is documented.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "strategy",
        with: { "cutover:strategy/types@0.1.0": crate::v0_2::cutover::strategy::types },
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
