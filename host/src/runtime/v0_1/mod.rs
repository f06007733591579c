//! `cutover:strategy@0.1.x`: the generated bindings and the host side of that contract version.
//!
//! One module per contract version (as Zed's extension host does): when 0.2 arrives it gets its own
//! module, and both can be linked side by side while strategies migrate. This module only translates
//! between WIT types and the host's own (`platform`, `contract`, `events`); all behaviour lives in the
//! dispatcher.

mod convert;
mod host;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "strategy",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use convert::{error_from_wit, info_from_wit, plan_to_wit};
