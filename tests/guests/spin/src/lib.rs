//! Loops forever in `deploy` without calling the host: the CPU budget must stop it.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

struct Spin;
fn info(name: &str) -> StrategyInfo {
    StrategyInfo { name: name.into(), summary: "test guest".into(), params: vec![] }
}

impl Guest for Spin {
    fn describe() -> StrategyInfo {
        info("spin")
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}
export!(Spin);
