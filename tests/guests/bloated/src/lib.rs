//! describe() returns 10,000 parameters: the host must refuse the component as a strategy, not print or
//! keep them.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::{ParamKind, ParamSpec};

struct Bloated;

impl Guest for Bloated {
    fn describe() -> StrategyInfo {
        let params = (0..10_000)
            .map(|i| ParamSpec {
                name: format!("p{i}"),
                kind: ParamKind::Boolean,
                default: None,
                summary: "s".repeat(100),
            })
            .collect();
        StrategyInfo { name: "bloated".into(), summary: "test guest".into(), params }
    }

    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        Ok(())
    }
}
export!(Bloated);
