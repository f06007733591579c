//! The canary's parameters: their defaults, and reading and checking them before anything changes.

use cutover_sdk::Error;
use cutover_sdk::gate::{MetricGate, default_options};
use cutover_sdk::params::{get_duration_ms, get_float, get_text};
use cutover_sdk::runtime;
use cutover_sdk::types::ParamValue;

/// Canary machines per process group, by default.
pub(crate) const DEFAULT_CANARY_COUNT: i64 = 1;

/// Percent of new connections sent to the canaries at each step, by default.
pub(crate) const DEFAULT_STEPS: [i64; 3] = [10, 25, 50];

/// How long each step lasts before its gate, by default (one minute).
pub(crate) const DEFAULT_STEP_PAUSE_MS: u64 = 60_000;

/// How much higher (absolute, 0.05 = five percentage points) the canary's error rate may be, by default.
pub(crate) const DEFAULT_MAX_ERROR_RATE_INCREASE: f64 = 0.05;

/// The judge's confidence, by default (Kayenta's).
pub(crate) const DEFAULT_METRIC_CONFIDENCE: f64 = 0.98;

/// The judge's tolerance band, by default (Kayenta's).
pub(crate) const DEFAULT_METRIC_TOLERANCE: f64 = 0.25;

/// The interval between the points of a metric gate's range queries, by default (Prometheus' usual
/// scrape interval).
pub(crate) const DEFAULT_METRIC_INTERVAL_MS: u64 = 15_000;

/// Whether a failed promotion moves the machines it already moved back, by default.
pub(crate) const DEFAULT_ROLLBACK: bool = true;

/// The parameters of one deploy, read and checked before anything changes.
pub(crate) struct Params {
    pub(crate) retries: cutover_sdk::Retry,
    pub(crate) canary_count: usize,
    pub(crate) steps: Vec<u8>,
    pub(crate) step_pause_ms: u64,
    pub(crate) max_error_rate_increase: f64,
    pub(crate) manual_gates: Vec<u8>,
    pub(crate) rollback: bool,
    /// The metric gates (error ratio, latency), in that order; empty: no metric gate.
    pub(crate) metric_gates: Vec<MetricGate>,
    /// How far back each step's metric gate looks (ms; defaults to `step_pause`).
    pub(crate) metric_window_ms: u64,
    /// The interval between the points of its range queries (ms).
    pub(crate) metric_interval_ms: u64,
}

/// Read the parameters and check them, so that a mistake fails the deploy before anything changes.
pub(crate) fn read_params(plan: &cutover_sdk::DeployPlan) -> Result<Params, Error> {
    let retries = cutover_sdk::Retry::for_plan(plan);
    let canary_count = match runtime::param("canary_count") {
        Some(ParamValue::Integer(n)) => n,
        _ => DEFAULT_CANARY_COUNT,
    };
    let steps = match runtime::param("steps") {
        Some(ParamValue::Integers(v)) => v,
        _ => DEFAULT_STEPS.to_vec(),
    };
    let step_pause_ms = cutover_sdk::params::get_duration_ms("step_pause", DEFAULT_STEP_PAUSE_MS);
    let max_error_rate_increase = match runtime::param("max_error_rate_increase") {
        Some(ParamValue::Float(f)) => f,
        _ => DEFAULT_MAX_ERROR_RATE_INCREASE,
    };
    let manual_gates = match runtime::param("manual_gates") {
        Some(ParamValue::Integers(v)) => v,
        _ => vec![],
    };
    let rollback = cutover_sdk::params::get_bool("rollback", DEFAULT_ROLLBACK);

    let invalid = |what: String| Err(Error::Invalid(format!("canary: {what}; nothing was changed")));
    if canary_count < 1 {
        return invalid(format!("`canary_count` = {canary_count}: expected at least 1"));
    }
    if steps.is_empty() {
        return invalid(
            "`steps` is empty: a canary needs at least one step (use strategy = \"rolling\" to move the \
             fleet without one)"
                .into(),
        );
    }
    if let Some(bad) = steps.iter().find(|p| !(1..=100).contains(*p)) {
        return invalid(format!("`steps` = {steps:?}: {bad} is not a percent between 1 and 100"));
    }
    if !max_error_rate_increase.is_finite() || max_error_rate_increase < 0.0 {
        return invalid(format!(
            "`max_error_rate_increase` = {max_error_rate_increase}: expected a share of requests, 0 or \
             more (0.05 = five percentage points)"
        ));
    }
    if let Some(bad) = manual_gates.iter().find(|g| !steps.contains(g)) {
        return invalid(format!(
            "`manual_gates` = {manual_gates:?}: {bad} is not one of the steps {steps:?}, so that gate would \
             never open"
        ));
    }
    let (metric_gates, metric_window_ms, metric_interval_ms) = read_metric_params(step_pause_ms)?;
    Ok(Params {
        retries,
        canary_count: usize::try_from(canary_count).unwrap_or(usize::MAX),
        // Checked above: every step and gate is in 1..=100.
        steps: steps.iter().map(|&p| p as u8).collect(),
        step_pause_ms,
        max_error_rate_increase,
        manual_gates: manual_gates.iter().map(|&p| p as u8).collect(),
        rollback,
        metric_gates,
        metric_window_ms,
        metric_interval_ms,
    })
}

/// The metric gates and their window and interval, checked (each error names the parameter).
fn read_metric_params(step_pause_ms: u64) -> Result<(Vec<MetricGate>, u64, u64), Error> {
    let invalid = |what: String| Err(Error::Invalid(format!("canary: {what}; nothing was changed")));
    let confidence = get_float("metric_confidence", DEFAULT_METRIC_CONFIDENCE);
    let tolerance = get_float("metric_tolerance", DEFAULT_METRIC_TOLERANCE);
    if !(confidence > 0.5 && confidence < 1.0) {
        return invalid(format!("`metric_confidence` = {confidence}: expected a number between 0.5 and 1"));
    }
    if !tolerance.is_finite() || tolerance < 0.0 {
        return invalid(format!(
            "`metric_tolerance` = {tolerance}: expected 0 or more (0.25 = Kayenta's band)"
        ));
    }
    let mut gates = Vec::new();
    for (name, query, min_effect) in [
        ("error ratio", "metric_error_query", "metric_error_min_effect"),
        ("latency", "metric_latency_query", "metric_latency_min_effect"),
    ] {
        let template = get_text(query, "");
        let min = get_float(min_effect, 0.0);
        if !min.is_finite() || min < 0.0 {
            return invalid(format!("`{min_effect}` = {min}: expected 0 or more, in the metric's unit"));
        }
        if template.trim().is_empty() {
            continue;
        }
        if !template.contains("{version}") && !template.contains("{machines}") {
            return invalid(format!(
                "`{query}` = {template:?} has neither `{{version}}` nor `{{machines}}`: it would answer the \
                 same for the canaries and the stable machines"
            ));
        }
        let mut options = default_options();
        options.confidence = confidence;
        options.tolerance = tolerance;
        options.min_effect = min;
        gates.push(MetricGate { name: name.into(), template, options });
    }
    let window = get_duration_ms("metric_window", 0);
    let window = if window == 0 { step_pause_ms } else { window };
    let interval = get_duration_ms("metric_interval", DEFAULT_METRIC_INTERVAL_MS);
    if !gates.is_empty() {
        if interval == 0 {
            return invalid("`metric_interval` is 0: expected at least 1ms".into());
        }
        if window < interval {
            return invalid(format!(
                "the metric window ({}, `metric_window` or else `step_pause`) is shorter than \
                 `metric_interval` ({}): each step's range query would hold at most one point",
                cutover_sdk::human(window),
                cutover_sdk::human(interval)
            ));
        }
    }
    Ok((gates, window, interval))
}
