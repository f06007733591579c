//! Calls the host after the run's deadline has passed: it waits across the deadline, then destroys
//! every machine of the app the moment it has control again. The host must stop the run with its
//! deadline error before any of those calls reaches the platform.
//!
//! `mode` picks how it waits:
//! - `sleep`: `runtime.sleep(wait_ms)` on the host's clock;
//! - `wasi-sleep`: `std::thread::sleep`, which blocks in WASI's `poll` rather than in a cutover call;
//! - `spin`: cheap host calls (`runtime.now`) in a loop for `wait_ms`, timed with WASI's monotonic clock
//!   (the host's clock: real time off the simulator). Set just past the deadline, it ends inside the
//!   10 ms between two epoch ticks, where only the host call itself can tell the deadline has passed.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::{ParamKind, ParamSpec, ParamValue};
use cutover::strategy::{machines, runtime};

struct Late;

fn param(name: &str, kind: ParamKind, default: ParamValue, summary: &str) -> ParamSpec {
    ParamSpec { name: name.into(), kind, default: Some(default), summary: summary.into() }
}

impl Guest for Late {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "late".into(),
            summary: "test guest".into(),
            params: vec![
                param("mode", ParamKind::Text, ParamValue::Text("sleep".into()), "sleep | wasi-sleep | spin"),
                param("wait_ms", ParamKind::Duration, ParamValue::DurationMs(1000), "how long to wait"),
            ],
        }
    }

    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        // Everything the attack needs is ready before the wait, so nothing but the call runs after it.
        let ids: Vec<String> = machines::list()?.into_iter().map(|m| m.id).collect();
        let Some(ParamValue::Text(mode)) = runtime::param("mode") else {
            return Err(Error::Invalid("no mode".into()));
        };
        let Some(ParamValue::DurationMs(wait_ms)) = runtime::param("wait_ms") else {
            return Err(Error::Invalid("no wait_ms".into()));
        };
        match mode.as_str() {
            "sleep" => runtime::sleep(wait_ms),
            "wasi-sleep" => std::thread::sleep(std::time::Duration::from_millis(wait_ms)),
            "spin" => {
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(wait_ms) {
                    std::hint::black_box(runtime::now());
                }
            }
            other => return Err(Error::Invalid(format!("unknown mode {other}"))),
        }
        let _ = machines::destroy(&ids);
        runtime::log(runtime::Level::Info, "still running after the deadline");
        Ok(())
    }
}
export!(Late);
