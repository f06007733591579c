//! A do-nothing strategy built against `cutover:strategy@0.3.0` (`wit/` here is the contract with only
//! its version changed): loading it must say which version it targets and which this host implements.
wit_bindgen::generate!({ path: "wit", world: "strategy" });

use cutover::strategy::runtime;

struct Future;

impl Guest for Future {
    fn describe() -> StrategyInfo {
        StrategyInfo { name: "future".into(), summary: "test guest: a newer contract".into(), params: vec![] }
    }

    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        runtime::log(runtime::Level::Info, "nothing to do");
        Ok(())
    }
}
export!(Future);
