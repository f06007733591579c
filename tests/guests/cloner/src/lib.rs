//! Multiplies the fleet: clones every machine, 50 times over. The host must hold it to the deploy's
//! blast radius (`[cutover.limits] new_machines`): past it, each clone is `denied`. It reports what it
//! was refused, so a test (or `cutover verify`) sees the denials reached the strategy.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::machines;

struct Cloner;

impl Guest for Cloner {
    fn describe() -> StrategyInfo {
        StrategyInfo { name: "cloner".into(), summary: "test guest".into(), params: vec![] }
    }
    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let ids: Vec<String> = machines::list()?.into_iter().map(|m| m.id).collect();
        let (mut made, mut denied) = (0u32, 0u32);
        for _ in 0..50 {
            for result in machines::clone_from(&ids, &plan.target, true) {
                match result {
                    Ok(_) => made += 1,
                    Err(Error::Denied(_)) => denied += 1,
                    Err(_) => {}
                }
            }
        }
        Err(Error::Denied(format!("cloner: {made} clones made, {denied} denied")))
    }
}
export!(Cloner);
