//! Recurses without bound in `deploy`: the stack limit must stop it.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

struct Overflow;
fn info(name: &str) -> StrategyInfo {
    StrategyInfo { name: name.into(), summary: "test guest".into(), params: vec![] }
}

impl Guest for Overflow {
    fn describe() -> StrategyInfo {
        info("overflow")
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        std::hint::black_box(descend(std::hint::black_box(1)));
        Ok(())
    }
}
#[inline(never)]
#[allow(unconditional_recursion)]
fn descend(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 16]);
    descend(depth + 1) + frame[3]
}
export!(Overflow);
