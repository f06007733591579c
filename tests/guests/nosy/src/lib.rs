//! Lists machines from `describe`, which must not reach any fleet.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::machines;

struct Nosy;
impl Guest for Nosy {
    fn describe() -> StrategyInfo {
        let seen = machines::list().map(|m| m.len()).unwrap_or(0);
        StrategyInfo { name: format!("nosy saw {seen}"), summary: "test guest".into(), params: vec![] }
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        Ok(())
    }
}
export!(Nosy);
