//! The built-in strategies, compiled from `strategies/` by `build.rs` and embedded in the binary.
//!
//! They are ordinary components that use only the public contract: a user's strategy loaded from a
//! `.wasm` path runs exactly the same way.

include!(concat!(env!("OUT_DIR"), "/builtin_strategies.rs"));

/// The component bytes of a built-in strategy.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// Names of all built-in strategies.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}
