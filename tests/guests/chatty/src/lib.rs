//! Floods the log: 20,000 lines of 16 KiB each, as fast as it can. The host must keep the run
//! bounded: lines cut to 4 KiB, and only a budget of them kept (the rest counted and reported).
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::runtime::{self, Level};

struct Chatty;

impl Guest for Chatty {
    fn describe() -> StrategyInfo {
        StrategyInfo { name: "chatty".into(), summary: "test guest".into(), params: vec![] }
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        let filler = "x".repeat(16 * 1024);
        for i in 0..20_000 {
            runtime::log(Level::Info, &format!("line {i}: {filler}"));
        }
        Ok(())
    }
}
export!(Chatty);
