//! cutover's end-to-end tests, as one test binary: each file (or directory) of tests/ is a module of it
//! (as wasmtime's `tests/all` and ripgrep's `tests/tests.rs` are), so the engine is linked once rather
//! than once per file. `tests/README.md` says what each module covers; `support/` is what they share,
//! among it the one way to run the binary (`support::cutover`) and to edit a config (`support::Toml`).
//!
//! Run one module with `cargo test -p cutover --test e2e MODULE::`, e.g. `cargo test -p cutover --test
//! e2e resume::`.

mod support;

mod canary_metrics;
mod cli;
mod contract;
mod dashboard;
mod examples_polyglot;
mod flaky;
mod fly;
mod fuzz;
mod leftovers;
mod local;
mod local_proxy;
mod metrics;
mod notify;
mod pipelined_sdks;
mod polyglot_versions;
mod release_command;
mod report;
mod resume;
mod rolling;
mod sandbox;
mod scaffold;
mod security;
mod shared_journal;
mod strategies;
mod verify;
