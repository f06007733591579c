//! Panics in `deploy` after one host call: the error must carry the panic message and a backtrace.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::machines;
struct Trap;
fn info(name: &str) -> StrategyInfo {
    StrategyInfo { name: name.into(), summary: "test guest".into(), params: vec![] }
}

impl Guest for Trap {
    fn describe() -> StrategyInfo {
        info("trap")
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        let fleet = machines::list()?;
        pick_victim(&fleet);
        Ok(())
    }
}
#[inline(never)]
fn pick_victim(fleet: &[cutover::strategy::types::Machine]) {
    let index = std::hint::black_box(fleet.len() + 5);
    panic!("deliberate bug: machine index {index} is out of range");
}
export!(Trap);
