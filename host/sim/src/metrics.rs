//! Metric series a scenario describes (`[[metrics]]`), answering a strategy's `metrics.query` and
//! `metrics.query-range` under the simulator, so a strategy's metric gates run in `cutover deploy
//! --platform sim` and in tests without a Prometheus.
//!
//! ```toml
//! [[metrics]]
//! match = 'version="2"'          # every query containing this text is answered with this series
//! labels = { version = "2" }
//! values = [0.05, 0.07, 0.04]    # cycled: point i of an answer has values[(time / step) % len]
//! step = "15s"                   # the scrape interval the values are spaced by (default 15s)
//! ```
//!
//! A query is answered with one series per entry whose `match` it contains (none: an empty answer, as
//! Prometheus gives for a selector matching nothing). The value at a time depends on the time alone,
//! so the same query at the same virtual time gets the same answer, whatever else the strategy did.

use cutover_core::duration::Dur;
use cutover_core::metrics::{MetricsSource, Point, Query, Series, bounded};
use cutover_core::{ErrorKind, OpError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One `[[metrics]]` entry: a series and the queries it answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSeries {
    /// Text a query must contain to be answered with this series (e.g. `version="2"`).
    #[serde(rename = "match")]
    pub matches: String,
    /// The series' labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its values, cycled over time (at least one).
    pub values: Vec<f64>,
    /// Time between two values (default 15 s, Prometheus' scrape interval).
    #[serde(default)]
    pub step: Option<Dur>,
}

impl MetricSeries {
    fn step_ms(&self) -> u64 {
        self.step.map_or(15_000, |d| (d.0.as_millis() as u64).max(1))
    }

    fn value_at(&self, time_ms: u64) -> f64 {
        self.values[((time_ms / self.step_ms()) % self.values.len() as u64) as usize]
    }

    /// Why this entry cannot answer anything, if it cannot (`index` counts from 1, as a reader does).
    pub(crate) fn check(&self, index: usize) -> Result<(), String> {
        if self.values.is_empty() {
            return Err(format!("[[metrics]] entry {index} (match {:?}) has no values", self.matches));
        }
        if let Some(v) = self.values.iter().find(|v| !v.is_finite()) {
            return Err(format!("[[metrics]] entry {index} (match {:?}) has the value {v}", self.matches));
        }
        if self.matches.is_empty() {
            return Err(format!("[[metrics]] entry {index} has an empty `match`"));
        }
        Ok(())
    }
}

/// The scenario's series, as a [`MetricsSource`].
#[derive(Debug, Clone)]
pub struct ScenarioMetrics {
    series: Vec<MetricSeries>,
}

impl ScenarioMetrics {
    /// A source answering from `series` (checked when the scenario was loaded).
    pub fn new(series: Vec<MetricSeries>) -> Self {
        Self { series }
    }
}

#[async_trait::async_trait]
impl MetricsSource for ScenarioMetrics {
    async fn query(&self, query: &Query) -> Result<Vec<Series>, OpError> {
        let (promql, times): (&str, Vec<u64>) = match query {
            Query::Instant { promql, time_ms } => (promql, vec![*time_ms]),
            Query::Range { promql, start_ms, end_ms, step_ms } => {
                if *step_ms == 0 || end_ms < start_ms {
                    return Err(OpError::new(ErrorKind::Invalid, "a range needs start <= end and a step"));
                }
                (promql, (*start_ms..=*end_ms).step_by(*step_ms as usize).collect())
            }
        };
        // A simulated Prometheus query takes a little virtual time, like any platform call.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let answer = self
            .series
            .iter()
            .filter(|s| promql.contains(&s.matches))
            .map(|s| Series {
                labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                points: times.iter().map(|t| Point { time_ms: *t, value: s.value_at(*t) }).collect(),
            })
            .collect();
        bounded(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(matches: &str, values: &[f64]) -> MetricSeries {
        MetricSeries {
            matches: matches.into(),
            labels: [("version".to_string(), matches.to_string())].into(),
            values: values.to_vec(),
            step: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queries_are_answered_by_the_entries_they_match() {
        let m = ScenarioMetrics::new(vec![series("v1", &[0.0]), series("v2", &[0.1, 0.2])]);
        let q = Query::Range { promql: "errors{v2}".into(), start_ms: 0, end_ms: 45_000, step_ms: 15_000 };
        let answer = m.query(&q).await.unwrap();
        assert_eq!(answer.len(), 1);
        let values: Vec<f64> = answer[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [0.1, 0.2, 0.1, 0.2]);
        let none = m.query(&Query::Instant { promql: "up".into(), time_ms: 0 }).await.unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_bad_entry_is_named() {
        assert!(series("v1", &[]).check(1).unwrap_err().contains("entry 1"));
        assert!(series("v1", &[f64::NAN]).check(2).unwrap_err().contains("NaN"));
    }
}
