//! A `cutover:strategy@0.2.0` canary gated on metrics: one canary is cloned, the error ratio of its
//! release over the last five minutes is judged against the previous release's, and the fleet moves
//! only if the judge passes (else the canary goes and the deploy fails). It exercises `metrics.query`,
//! `metrics.query-range` and `metrics.judge` end to end; the built-in canary's gate is the real one.
//!
//! With parameter `queries` above 0 it only makes that many `metrics.query` calls and returns: the
//! benchmark of a query's round trip through the host (`cargo bench -p cutover --bench metrics`).
wit_bindgen::generate!({ path: "../../../wit/v0.2", world: "strategy" });

use cutover::strategy::metrics::{self, Harm, JudgeOptions, Verdict};
use cutover::strategy::types::{MachineError, ParamKind, ParamSpec, ParamValue};
use cutover::strategy::{health, machines, runtime};

struct Metered;

fn first(errors: Vec<MachineError>) -> Error {
    errors.into_iter().next().map_or(Error::Platform("batch failed".into()), |e| e.error)
}

fn values(series: Vec<metrics::Series>) -> Vec<f64> {
    series.into_iter().flat_map(|s| s.points).map(|p| p.value).collect()
}

fn error_ratio(version: u64, now: u64) -> Result<Vec<f64>, Error> {
    let query = format!("error_ratio{{version=\"{version}\"}}");
    metrics::query_range(&query, now.saturating_sub(300_000), now, 15_000).map(values)
}

impl Guest for Metered {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "metered".into(),
            summary: "test guest: a canary judged on metrics".into(),
            params: vec![ParamSpec {
                name: "queries".into(),
                kind: ParamKind::Integer,
                default: Some(ParamValue::Integer(0)),
                summary: "above 0: make this many metrics queries and nothing else (a benchmark)".into(),
            }],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let queries = plan.params.iter().find_map(|(name, value)| match (name.as_str(), value) {
            ("queries", ParamValue::Integer(n)) => Some(*n),
            _ => None,
        });
        if let Some(n) = queries.filter(|n| *n > 0) {
            let mut points = 0usize;
            for _ in 0..n {
                points += values(metrics::query("error_ratio{version=\"2\"}", None)?).len();
            }
            std::hint::black_box(points);
            return Ok(());
        }
        let fleet: Vec<String> = machines::list()?.into_iter().map(|m| m.id).collect();
        let Some(source) = fleet.first().cloned() else { return Ok(()) };
        let canary = machines::clone_from(&[source], &plan.target, true).remove(0)?;
        health::wait_healthy(std::slice::from_ref(&canary), plan.wait_timeout_ms).map_err(first)?;

        let now = runtime::now();
        let instant = metrics::query(&format!("error_ratio{{version=\"{}\"}}", plan.target.version), None)?;
        runtime::log(runtime::Level::Info, &format!("canary error ratio now: {:?}", values(instant)));
        let previous = plan.previous.as_ref().map_or(0, |r| r.version);
        let options =
            JudgeOptions { confidence: 0.98, harm: Harm::Increase, tolerance: 0.25, min_effect: 0.0 };
        let j =
            metrics::judge(&error_ratio(plan.target.version, now)?, &error_ratio(previous, now)?, options)?;
        runtime::log(
            runtime::Level::Info,
            &format!("judge: {:?}, p-value {:.4}, effect size {:.4}", j.verdict, j.p_value, j.effect_size),
        );
        if j.verdict == Verdict::Fail {
            machines::destroy(&[canary]).map_err(first)?;
            return Err(Error::Unhealthy(format!(
                "the metric judge failed the canary: error ratio up by {:.4} (p-value {:.4})",
                j.effect_size, j.p_value
            )));
        }
        machines::update(&fleet, &plan.target).map_err(first)?;
        health::wait_healthy(&fleet, plan.wait_timeout_ms).map_err(first)?;
        machines::destroy(&[canary]).map_err(first)
    }
}
export!(Metered);
