//! `[cutover.metrics]`: a strategy's metrics queries sent to a Prometheus-compatible HTTP API
//! (`/api/v1/query`, `/api/v1/query_range`), as Prometheus, Fly's managed Prometheus, Thanos and
//! VictoriaMetrics all serve it. The host asks, with the operator's token; the strategy only sees the
//! typed answer. Every failure is one of the contract's errors, and no query outlives its timeout.

use cutover_config::MetricsConfig;
use cutover_core::metrics::{MetricsSource, Point, Query, Series, bounded};
use cutover_core::{ErrorKind, OpError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A Prometheus HTTP API as a [`MetricsSource`].
pub struct PrometheusSource {
    client: reqwest::Client,
    url: String,
    /// `Authorization: Bearer …`, read from `token_env` when the platform was opened.
    token: Option<String>,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is never shown, even in a debug print.
        f.debug_struct("PrometheusSource").field("url", &self.url).finish_non_exhaustive()
    }
}

impl PrometheusSource {
    /// A source for `config`; `Err` when `token_env` names a variable that is not set.
    pub fn new(config: &MetricsConfig) -> Result<Self, String> {
        let token = match &config.token_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                format!("[cutover.metrics] token_env names `{var}`, which is not set in the environment")
            })?),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("building the metrics client: {e}"))?;
        Ok(Self { client, url: config.url.clone(), token })
    }
}

/// Prometheus' answer envelope.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Matrix(Vec<Sample>),
    Scalar((f64, String)),
    String((f64, String)),
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

fn point((t, v): (f64, String)) -> Point {
    // Prometheus writes values as strings ("NaN", "+Inf" too); what does not parse is no number.
    Point { time_ms: (t * 1000.0).round() as u64, value: v.parse().unwrap_or(f64::NAN) }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[async_trait::async_trait]
impl MetricsSource for PrometheusSource {
    async fn query(&self, query: &Query) -> Result<Vec<Series>, OpError> {
        let (path, params) = match query {
            Query::Instant { promql, time_ms } => {
                ("query", vec![("query", promql.clone()), ("time", seconds(*time_ms))])
            }
            Query::Range { promql, start_ms, end_ms, step_ms } => (
                "query_range",
                vec![
                    ("query", promql.clone()),
                    ("start", seconds(*start_ms)),
                    ("end", seconds(*end_ms)),
                    ("step", seconds(*step_ms)),
                ],
            ),
        };
        let mut request = self.client.post(format!("{}/api/v1/{path}", self.url)).form(&params);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| transport(&self.url, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport(&self.url, &e))?;
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
            OpError::new(
                ErrorKind::Platform,
                format!(
                    "the metrics server at {} answered HTTP {status} that is not Prometheus' JSON: {e}",
                    self.url
                ),
            )
        })?;
        if envelope.status != "success" {
            let kind = match envelope.error_type.as_deref() {
                Some("bad_data") => ErrorKind::Invalid,
                Some("timeout") => ErrorKind::Timeout,
                _ => ErrorKind::Platform,
            };
            let why = envelope.error.unwrap_or_else(|| format!("HTTP {status}"));
            return Err(OpError::new(kind, format!("the metrics server refused the query: {why}")));
        }
        let series = match envelope.data {
            Some(Data::Vector(samples) | Data::Matrix(samples)) => samples
                .into_iter()
                .map(|s| Series {
                    labels: s.metric.into_iter().collect(),
                    points: s.value.into_iter().chain(s.values).map(point).collect(),
                })
                .collect(),
            Some(Data::Scalar(p) | Data::String(p)) => {
                vec![Series { labels: vec![], points: vec![point(p)] }]
            }
            None => vec![],
        };
        bounded(series)
    }
}

/// A request that got no answer: `timeout` when the client's timeout passed, else `platform`.
fn transport(url: &str, e: &reqwest::Error) -> OpError {
    if e.is_timeout() {
        OpError::new(ErrorKind::Timeout, format!("the metrics server at {url} did not answer in time"))
    } else {
        OpError::new(ErrorKind::Platform, format!("the metrics server at {url} is unreachable: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_matrices_and_errors_parse() {
        let v: Envelope = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"2"},"value":[1700000000.5,"0.05"]}]}}"#,
        )
        .unwrap();
        let Some(Data::Vector(s)) = v.data else { panic!("a vector") };
        assert_eq!(point(s[0].value.clone().unwrap()), Point { time_ms: 1_700_000_000_500, value: 0.05 });
        let m: Envelope = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"NaN"]]}]}}"#,
        )
        .unwrap();
        assert!(matches!(m.data, Some(Data::Matrix(ref s)) if s[0].values.len() == 2));
        let e: Envelope =
            serde_json::from_str(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#)
                .unwrap();
        assert_eq!(e.error_type.as_deref(), Some("bad_data"));
        assert_eq!(seconds(1_500), "1.500");
    }

    #[test]
    fn the_token_is_never_shown() {
        let config = MetricsConfig {
            url: "http://127.0.0.1:9".into(),
            token_env: Some("CUTOVER_TEST_NO_SUCH_VAR_19".into()),
            timeout: std::time::Duration::from_secs(1),
        };
        assert!(PrometheusSource::new(&config).unwrap_err().contains("CUTOVER_TEST_NO_SUCH_VAR_19"));
        let source = PrometheusSource {
            client: reqwest::Client::new(),
            url: "http://x".into(),
            token: Some("s3cret".into()),
        };
        assert!(!format!("{source:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_platform_error() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let config = MetricsConfig {
            url: "http://127.0.0.1:9".into(),
            token_env: None,
            timeout: std::time::Duration::from_secs(5),
        };
        let source = PrometheusSource::new(&config).unwrap();
        let e = source.query(&Query::Instant { promql: "up".into(), time_ms: 0 }).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Platform, "{e}");
        assert!(e.message.contains("unreachable"), "{e}");
    }
}
