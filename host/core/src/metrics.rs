//! Metrics a strategy may query (contract 0.2's `metrics` interface): Prometheus-compatible instant and
//! range queries, answered as typed series. The host performs the query, never the strategy, so the
//! endpoint's address and token stay out of the sandbox, and each answer is journaled like every call:
//! a resumed deploy is handed the answer the first run saw, not a fresh one.
//!
//! Who answers is a [`MetricsSource`]: a Prometheus HTTP API in production (`cutover-driver`), the
//! scenario's series under the simulator (`cutover-sim`).

use crate::error::OpError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One point of a series: when (ms since the Unix epoch) and the value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The value. Never NaN or infinite: a source leaves such points out (a ratio over no requests is
    /// no data, not a number), which also keeps every answer storable in the journal.
    pub value: f64,
}

/// One series: its labels and its points (one for an instant query).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Label names and values, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Points in time order.
    pub points: Vec<Point>,
}

/// A metrics query, as a strategy asked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Query {
    /// The value of `promql` at one time.
    Instant {
        /// The PromQL expression.
        promql: String,
        /// When, in ms since the Unix epoch.
        time_ms: u64,
    },
    /// The values of `promql` from `start_ms` to `end_ms`, every `step_ms`.
    Range {
        /// The PromQL expression.
        promql: String,
        /// First point, ms since the Unix epoch.
        start_ms: u64,
        /// Last point, ms since the Unix epoch.
        end_ms: u64,
        /// Distance between points, ms (at least 1).
        step_ms: u64,
    },
}

/// The most series one answer may hold, and points in all: an answer is journaled and handed to a
/// guest with bounded memory, so a query that matches the whole of a Prometheus is refused instead.
pub const MAX_SERIES: usize = 1_000;
/// See [`MAX_SERIES`].
pub const MAX_POINTS: usize = 50_000;

/// Who answers metrics queries.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// Run one query. Errors are typed as the contract's: `platform` (the endpoint is unreachable or
    /// answered an error), `invalid` (the endpoint refused the query), `timeout`.
    async fn query(&self, query: &Query) -> Result<Vec<Series>, OpError>;
}

/// Drop non-finite points and refuse an answer over [`MAX_SERIES`] / [`MAX_POINTS`]: what every
/// source does before answering.
pub fn bounded(mut series: Vec<Series>) -> Result<Vec<Series>, OpError> {
    for s in &mut series {
        s.points.retain(|p| p.value.is_finite());
        s.labels.sort();
    }
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    if series.len() > MAX_SERIES || points > MAX_POINTS {
        return Err(OpError::new(
            crate::ErrorKind::Invalid,
            format!(
                "the query answered {} series and {points} points; at most {MAX_SERIES} series and \
                 {MAX_POINTS} points are allowed (narrow it by labels, or use a larger step)",
                series.len()
            ),
        ));
    }
    Ok(series)
}
