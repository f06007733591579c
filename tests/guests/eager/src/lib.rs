//! A blue/green strategy with the classic bug: it destroys blue as soon as green is created, before
//! green has passed a single check. `cutover verify` must name `replacement-first` (and capacity).
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::MachineError;
use cutover::strategy::{health, machines, traffic};

struct Eager;

fn first(mut errors: Vec<MachineError>) -> Error {
    errors.remove(0).error
}

impl Guest for Eager {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "eager".into(),
            summary: "test guest: blue goes before green".into(),
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
        // The bug: nothing has checked green yet.
        machines::destroy(&blue).map_err(first)?;
        health::wait_healthy(&green, plan.wait_timeout_ms).map_err(first)?;
        traffic::uncordon(&green).map_err(first)?;
        Ok(())
    }
}
export!(Eager);
