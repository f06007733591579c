//! Allocates 1 MiB blocks forever in `deploy`: the memory limit must stop it.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

struct Bomb;
fn info(name: &str) -> StrategyInfo {
    StrategyInfo { name: name.into(), summary: "test guest".into(), params: vec![] }
}

impl Guest for Bomb {
    fn describe() -> StrategyInfo {
        info("membomb")
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}
export!(Bomb);
