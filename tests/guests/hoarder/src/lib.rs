//! Brings green up correctly and switches traffic to it, but never retires blue: the fleet ends on two
//! releases with every old machine left over. `cutover verify` must name `one-release` and
//! `nothing-lost`.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::MachineError;
use cutover::strategy::{health, machines, traffic};

struct Hoarder;

fn first(mut errors: Vec<MachineError>) -> Error {
    errors.remove(0).error
}

impl Guest for Hoarder {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "hoarder".into(),
            summary: "test guest: blue is never retired".into(),
            params: vec![],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let blue: Vec<String> = machines::list()?
            .into_iter()
            .filter(|m| m.release.version != plan.target.version)
            .map(|m| m.id)
            .collect();
        let green =
            machines::clone_from(&blue, &plan.target, false).into_iter().collect::<Result<Vec<_>, _>>()?;
        health::wait_healthy(&green, plan.wait_timeout_ms).map_err(first)?;
        traffic::uncordon(&green).map_err(first)?;
        Ok(())
    }
}
export!(Hoarder);
