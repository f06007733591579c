//! Oversized arguments and return values: an update naming 50,000 machines, metadata of 1 MiB, and a
//! 1 MiB error message to end with. Each must be refused or cut by the host, never held unbounded.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::machines;
use cutover::strategy::runtime::{self, Level};

struct Oversized;

impl Guest for Oversized {
    fn describe() -> StrategyInfo {
        StrategyInfo { name: "oversized".into(), summary: "test guest".into(), params: vec![] }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let ids: Vec<String> = (0..50_000).map(|i| format!("m{i:013}")).collect();
        match machines::update(&ids, &plan.target) {
            Err(errors) => {
                runtime::log(Level::Info, &format!("update refused for {} machines", errors.len()))
            }
            Ok(()) => return Err(Error::Invalid("an update of 50,000 machines went through".into())),
        }
        let first = machines::list()?.remove(0).id;
        if let Err(e) = machines::set_metadata(&first, "bloat", &"m".repeat(1 << 20)) {
            runtime::log(
                Level::Info,
                &format!("metadata refused: {e:?}").chars().take(200).collect::<String>(),
            );
        }
        Err(Error::Platform("e".repeat(1 << 20)))
    }
}
export!(Oversized);
