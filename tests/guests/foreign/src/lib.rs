//! Tries to destroy the machine named by the `victim` parameter (another app's) and reports what the
//! host said: the host must refuse, and nothing may change.
wit_bindgen::generate!({ path: "../../../wit", world: "strategy" });

use cutover::strategy::types::ParamValue;

use cutover::strategy::{machines, runtime};
struct Foreign;
impl Guest for Foreign {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "foreign".into(),
            summary: "test guest".into(),
            params: vec![cutover::strategy::types::ParamSpec {
                name: "victim".into(),
                kind: cutover::strategy::types::ParamKind::Text,
                default: None,
                summary: "machine id to attack".into(),
            }],
        }
    }
    fn deploy(_plan: DeployPlan) -> Result<(), Error> {
        let Some(ParamValue::Text(victim)) = runtime::param("victim") else {
            return Err(Error::Invalid("no victim".into()));
        };
        machines::stop(std::slice::from_ref(&victim), "SIGKILL", 0).map_err(|mut e| e.remove(0).error)?;
        machines::destroy(&[victim]).map_err(|mut e| e.remove(0).error)?;
        Ok(())
    }
}
export!(Foreign);
