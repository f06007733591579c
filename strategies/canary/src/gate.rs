//! The gate after each step: the canaries' checks, their error rate against the stable release's
//! (where the platform reports per-release statistics), the metric gates (canary against stable on the
//! app's own metrics, judged by the host), and manual promotion.

use crate::params::Params;
use crate::weights::Fleet;
use cutover_sdk::gate::Side;
use cutover_sdk::metrics::Verdict;
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::traffic::{TrafficCapabilities, TrafficStats};
use cutover_sdk::types::CheckStatus;
use cutover_sdk::{DeployPlan, Error, health, human, retry, traffic, with_context};

/// The gate after a step: every canary check passing, the error rate within bounds (where the platform
/// reports stats), and, for a step in `manual_gates`, a promotion. The error names the step and what
/// was measured.
pub(crate) fn gate(
    params: &Params,
    caps: &TrafficCapabilities,
    plan: &DeployPlan,
    view: &Fleet,
    canaries: &[String],
    label: &str,
    percent: u8,
) -> Result<(), Error> {
    let retries = params.retries;
    let failed = format!("canary gate failed at {label}");
    for id in canaries {
        let checks = retry(retries, "reading canary checks", || health::checks(id))
            .map_err(|e| with_context(e, &format!("{failed}: reading the checks of canary {id}")))?;
        if let Some(c) = checks.iter().find(|c| c.status != CheckStatus::Passing) {
            let status = if c.status == CheckStatus::Warning { "warning" } else { "critical" };
            return Err(Error::Unhealthy(format!(
                "{failed}: canary {id} check `{}` is {status} ({}) after {} on v{}",
                c.name,
                c.output,
                human(params.step_pause_ms),
                plan.target.version
            )));
        }
    }
    if caps.stats {
        let window = params.step_pause_ms;
        let canary = retry(retries, "reading traffic stats", || traffic::stats(plan.target.version, window))
            .map_err(|e| {
                with_context(e, &format!("{failed}: reading the traffic stats of v{}", plan.target.version))
            })?;
        let mut stable = TrafficStats { requests: 0, errors: 0, p50_ms: 0.0, p99_ms: 0.0 };
        for &version in view.stable.keys() {
            let s =
                retry(retries, "reading traffic stats", || traffic::stats(version, window)).map_err(|e| {
                    with_context(e, &format!("{failed}: reading the traffic stats of v{version}"))
                })?;
            stable.requests += s.requests;
            stable.errors += s.errors;
            stable.p50_ms = stable.p50_ms.max(s.p50_ms);
            stable.p99_ms = stable.p99_ms.max(s.p99_ms);
        }
        let (canary_rate, stable_rate) = (error_rate(&canary), error_rate(&stable));
        let increase = canary_rate - stable_rate;
        let measured = format!(
            "canary error rate {:.2}% ({} errors in {} requests) vs stable {:.2}% ({} in {}) over {}, {:+.2} \
             points; p99 {:.0} ms vs {:.0} ms",
            canary_rate * 100.0,
            canary.errors,
            canary.requests,
            stable_rate * 100.0,
            stable.errors,
            stable.requests,
            human(window),
            increase * 100.0,
            canary.p99_ms,
            stable.p99_ms
        );
        runtime::log(Level::Info, &format!("{label}: {measured}"));
        if canary.requests == 0 {
            runtime::log(
                Level::Warn,
                &format!(
                    "{label}: the canary received no requests in the window: its error rate is unmeasured"
                ),
            );
        }
        if increase > params.max_error_rate_increase {
            return Err(Error::Unhealthy(format!(
                "{failed}: {measured}: above max_error_rate_increase {} ({:.2} points)",
                params.max_error_rate_increase,
                params.max_error_rate_increase * 100.0
            )));
        }
    }
    if !params.metric_gates.is_empty() {
        judge_metrics(params, plan, view, canaries, label, &failed)?;
    }
    if params.manual_gates.contains(&percent) {
        let name = format!("step-{percent}");
        runtime::log(
            Level::Info,
            &format!(
                "{label}: waiting at manual gate `{name}`: run `cutover promote {name}` to go on (times out \
                 after {})",
                human(plan.wait_timeout_ms)
            ),
        );
        runtime::await_promotion(&name, plan.wait_timeout_ms).map_err(|e| with_context(e, &failed))?;
        runtime::log(Level::Info, &format!("{label}: manual gate `{name}` promoted"));
    }
    Ok(())
}

/// The metric gates: each query over the last `metric_window`, canaries against the stable machines,
/// judged by the host. `fail` fails the gate naming the metric and its query; `marginal` is logged as a
/// warning and the canary goes on (a real but small difference: the options' band says it is not a
/// failure); a query that fails or returns nothing fails the gate (a gate that saw nothing must not
/// pass).
fn judge_metrics(
    params: &Params,
    plan: &DeployPlan,
    view: &Fleet,
    canaries: &[String],
    label: &str,
    failed: &str,
) -> Result<(), Error> {
    let end = runtime::now();
    let start = end.saturating_sub(params.metric_window_ms);
    let canary_versions = [plan.target.version];
    let stable_versions: Vec<u64> = view.stable.keys().copied().collect();
    let canary = Side { versions: &canary_versions, machines: canaries };
    let baseline = Side { versions: &stable_versions, machines: &view.stable_ids };
    for metric in &params.metric_gates {
        let c = metric
            .compare(params.retries, &plan.app, &canary, &baseline, start, end, params.metric_interval_ms)
            .map_err(|e| cutover_sdk::with_prefix(e, failed))?;
        let j = &c.judgment;
        let verdict = match j.verdict {
            Verdict::Pass => "pass",
            Verdict::Marginal => "marginal",
            Verdict::Fail => "fail",
        };
        let measured = format!(
            "{} over {}: {verdict}, p-value {:.4}, effect {:+.4} (interval {:.4} to {:.4}), {} canary vs {} \
             stable samples",
            metric.name,
            human(params.metric_window_ms),
            j.p_value,
            j.effect_size,
            j.ci_low,
            j.ci_high,
            c.canary_samples,
            c.baseline_samples
        );
        match j.verdict {
            Verdict::Pass => runtime::log(Level::Info, &format!("{label}: {measured}")),
            Verdict::Marginal => runtime::log(
                Level::Warn,
                &format!("{label}: {measured}: a difference within the tolerance, going on ({})", j.reason),
            ),
            Verdict::Fail => {
                return Err(Error::Unhealthy(format!(
                    "{failed}: the metric judge failed the canary on {measured} ({}); canary query `{}`",
                    j.reason, c.canary_query
                )));
            }
        }
    }
    Ok(())
}

/// Errors per request; no requests is no evidence of errors.
pub(crate) fn error_rate(s: &TrafficStats) -> f64 {
    if s.requests == 0 { 0.0 } else { s.errors as f64 / s.requests as f64 }
}
