//! Calls `runtime.now` `calls` times (a parameter): measures the guest→host round trip.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::ParamValue;

use cutover::strategy::runtime;
struct Calls;
impl Guest for Calls {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "calls".into(),
            summary: "benchmark guest".into(),
            params: vec![cutover::strategy::types::ParamSpec {
                name: "calls".into(),
                kind: cutover::strategy::types::ParamKind::Integer,
                default: Some(ParamValue::Integer(1000)),
                summary: "host calls to make".into(),
            }],
        }
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        let Some(ParamValue::Integer(n)) = runtime::param("calls") else {
            return Err(Error::Invalid("calls missing".into()));
        };
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(runtime::now());
        }
        std::hint::black_box(sum);
        Ok(())
    }
}
export!(Calls);
