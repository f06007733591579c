//! Metric gates (contract 0.2): a templated PromQL query asked once for the canaries and once for the
//! baseline over the same window, the two answers turned into samples, and the host's judge deciding.
//!
//! Templates, not finished queries, because the strategy alone knows which machines are canaries and
//! which release is stable at the moment it judges; the operator knows the metric names and labels.
//! A template may hold:
//!
//! - `{version}`: the side's release version(s), as a PromQL regex alternation (`2`, or `1|3` when the
//!   baseline spans releases) — so match it with `=~`;
//! - `{machines}`: the side's machine ids as a regex alternation (`id1|id2`, regex characters escaped),
//!   matched with `=~` against the label holding the machine id (`instance` in the local platform's
//!   discovery file);
//! - `{app}`: the app's name.
//!
//! Judging is the host's (`metrics.judge`, Mann–Whitney U with a Hodges–Lehmann effect size), so a
//! strategy in any language gets the same decision from the same numbers.

use crate::metrics::{self, Harm, JudgeOptions, Judgment, Series};
use crate::retry::{Retry, retry};
use crate::types::Error;

/// The judge's defaults (Kayenta's): confidence 0.98, harm `increase`, tolerance 0.25, min-effect 0.
pub fn default_options() -> JudgeOptions {
    JudgeOptions { confidence: 0.98, harm: Harm::Increase, tolerance: 0.25, min_effect: 0.0 }
}

/// One side of a comparison: which release(s) and which machines a template is filled in with.
#[derive(Debug, Clone)]
pub struct Side<'a> {
    /// The release version(s) (`{version}`).
    pub versions: &'a [u64],
    /// The machine ids (`{machines}`).
    pub machines: &'a [String],
}

/// `template` with `{app}`, `{version}` and `{machines}` filled in for `side`.
pub fn render(template: &str, app: &str, side: &Side<'_>) -> String {
    let versions = side.versions.iter().map(u64::to_string).collect::<Vec<_>>().join("|");
    let machines = side.machines.iter().map(|m| regex_escape(m)).collect::<Vec<_>>().join("|");
    template.replace("{app}", app).replace("{version}", &versions).replace("{machines}", &machines)
}

/// `s` with RE2's special characters escaped, doubled for a PromQL double-quoted string (where a
/// backslash must itself be escaped), so a machine id is always matched literally.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push_str(r"\\");
        }
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every finite value of every series' points, series after series: the samples a judge compares.
/// A query that aggregates (`sum(...)`) gives one series; one that does not gives one per machine,
/// and all their points count.
pub fn samples(series: &[Series]) -> Vec<f64> {
    series.iter().flat_map(|s| s.points.iter()).map(|p| p.value).filter(|v| v.is_finite()).collect()
}

/// The samples of `promql` from `start_ms` to `end_ms` every `step_ms`, retried by count only on a
/// transient (`platform`) error: the host bounds each query by its timeout, so a gate never hangs.
pub fn range_samples(
    retries: Retry,
    promql: &str,
    start_ms: u64,
    end_ms: u64,
    step_ms: u64,
) -> Result<Vec<f64>, Error> {
    retry(retries.count_only(), "querying metrics", || {
        metrics::query_range(promql, start_ms, end_ms, step_ms)
    })
    .map(|series| samples(&series))
}

/// A metric gate: a named query template and how to judge it.
#[derive(Debug, Clone)]
pub struct MetricGate {
    /// What the metric is, for logs and errors (`error ratio`, `p99 latency`).
    pub name: String,
    /// The PromQL template.
    pub template: String,
    /// How to judge canary against baseline.
    pub options: JudgeOptions,
}

/// What one gate saw and decided.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The query asked for the canaries.
    pub canary_query: String,
    /// The query asked for the baseline.
    pub baseline_query: String,
    /// How many canary samples were judged.
    pub canary_samples: usize,
    /// How many baseline samples were judged.
    pub baseline_samples: usize,
    /// The judge's decision.
    pub judgment: Judgment,
}

impl MetricGate {
    /// Query the canary and baseline sides over `[start_ms, end_ms]` every `step_ms` and judge them.
    /// A side with no samples is `invalid`, naming the query: a gate that saw nothing must not pass
    /// (a misspelt metric or label would otherwise pass every step).
    #[allow(clippy::too_many_arguments)]
    pub fn compare(
        &self,
        retries: Retry,
        app: &str,
        canary: &Side<'_>,
        baseline: &Side<'_>,
        start_ms: u64,
        end_ms: u64,
        step_ms: u64,
    ) -> Result<Comparison, Error> {
        let canary_query = render(&self.template, app, canary);
        let baseline_query = render(&self.template, app, baseline);
        let fetch = |side: &str, query: &str| -> Result<Vec<f64>, Error> {
            let values = range_samples(retries, query, start_ms, end_ms, step_ms).map_err(|e| {
                crate::with_prefix(e, &format!("{}: the {side} query `{query}` failed", self.name))
            })?;
            if values.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: the {side} query `{query}` returned no samples over the last {}: check the \
                     query's metric and labels, and that the {side} machines are scraped",
                    self.name,
                    crate::human(end_ms.saturating_sub(start_ms))
                )));
            }
            Ok(values)
        };
        let canary_values = fetch("canary", &canary_query)?;
        let baseline_values = fetch("baseline", &baseline_query)?;
        let judgment = metrics::judge(&canary_values, &baseline_values, self.options)
            .map_err(|e| crate::with_prefix(e, &format!("{}: judging canary against baseline", self.name)))?;
        Ok(Comparison {
            canary_query,
            baseline_query,
            canary_samples: canary_values.len(),
            baseline_samples: baseline_values.len(),
            judgment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_every_placeholder_and_escapes_machine_ids() {
        let machines = vec!["abc123".to_string(), "we.ird".to_string()];
        let side = Side { versions: &[1, 3], machines: &machines };
        let q = render(r#"up{app="{app}",version=~"{version}",instance=~"{machines}"}"#, "hello", &side);
        assert_eq!(q, r#"up{app="hello",version=~"1|3",instance=~"abc123|we\\.ird"}"#);
    }

    #[test]
    fn samples_keep_finite_values_of_every_series() {
        let point = |v| metrics::Point { time_ms: 0, value: v };
        let series = vec![
            Series { labels: vec![], points: vec![point(1.0), point(f64::NAN)] },
            Series { labels: vec![], points: vec![point(2.0)] },
        ];
        assert_eq!(samples(&series), vec![1.0, 2.0]);
    }
}
