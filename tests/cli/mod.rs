//! The `cutover` binary end to end: deploys on the simulator, JSON events, exit codes, and errors that
//! say which file, which key and what was expected. By concern:
//!
//! - `deploy`: deploys on the simulator (10, 1,000 and 10,000 machines), JSON events and the human
//!   output, a failing release, a strategy from a file, a crashing one.
//! - `errors`: bad input exits 2 naming the file, the key and what was expected.
//! - `catalog`: what the binary tells about strategies and itself — `strategies`, `inspect`, `--help`.
//! - `releases`: the journaled releases, rollback (also to a kept blue fleet) and promote.
//! - `status`: `cutover status` after a deploy, as JSON, and of a deploy killed at a manual gate.
//! - `output`: a deploy whose stdout is closed (`--json | head -1`) or whose terminal hangs up
//!   (SIGHUP) goes on and succeeds.

mod catalog;
mod deploy;
mod errors;
mod output;
mod releases;
mod status;

use crate::support::{self, Toml};

use serde_json::Value;
use std::path::PathBuf;

/// The example app's fly.toml, used in place.
fn example() -> PathBuf {
    support::root().join("examples/app/fly.toml")
}

/// One of the example app's scenarios.
fn scenario(name: &str) -> String {
    support::root().join("examples/app/scenarios").join(name).display().to_string()
}

/// The event that closes a deploy, which must be the last.
fn finished(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "deploy_finished", "the last event closes the deploy");
    last
}

/// The example app deployed by a canary with a manual gate after the 10% step, and no simulated
/// operator: it waits for `cutover promote`.
fn canary_with_a_manual_gate() -> Toml {
    Toml::example_app()
        .set("deploy.strategy", "canary")
        .set("cutover.params.steps", [10, 50])
        .set("cutover.params.manual_gates", [10])
}
