//! Floods the host with calls, forever: `runtime.now` (the cheapest call there is) or `machines.get`
//! (a platform read), as its `call` parameter says. Each call returns at once, so the CPU budget never
//! fires; the host must stop it by counting the calls, or the bytes they put in the journal.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::{ParamKind, ParamSpec, ParamValue};
use cutover::strategy::{machines, runtime};

struct Flood;

impl Guest for Flood {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "flood".into(),
            summary: "test guest".into(),
            params: vec![ParamSpec {
                name: "call".into(),
                kind: ParamKind::Text,
                default: Some(ParamValue::Text("get".into())),
                summary: "now | get".into(),
            }],
        }
    }
    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let cheap = matches!(runtime::param("call"), Some(ParamValue::Text(t)) if t == "now");
        let id = machines::list()?.into_iter().next().map(|m| m.id).unwrap_or_default();
        let mut sum = 0u64;
        loop {
            if cheap {
                sum = sum.wrapping_add(runtime::now());
            } else {
                let _ = machines::get(&id);
            }
            std::hint::black_box((sum, &plan));
        }
    }
}
export!(Flood);
