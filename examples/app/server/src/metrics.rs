//! `GET /metrics`: the app's requests in Prometheus's text exposition format (version 0.0.4), so a
//! Prometheus scraping each machine can tell one release's error ratio and latency from another's.
//!
//! Two families, both labelled by `path` (one of the app's routes, or `other`: a client choosing
//! arbitrary paths must not grow the label set without bound):
//!
//! - `http_requests_total{path, code}`: a counter of answered requests by status code;
//! - `http_request_duration_seconds{path}`: a histogram of the time to answer, buckets from 5 ms to 10 s.
//!
//! Which release and machine answered is not a label here: Prometheus adds those from the local
//! platform's service discovery file (or Fly's), as it does for every target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// The histogram's upper bounds, in seconds (Prometheus client libraries' defaults).
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The routes counted by name; any other path counts as `other`.
const PATHS: [&str; 5] = ["/", "/health", "/slow", "/ws", "/metrics"];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not cumulative; summed when shown).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counts and latencies since the process started.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    durations: BTreeMap<&'static str, Histogram>,
}

/// The label for a request path: a known route, else `other`.
pub fn path_label(path: &str) -> &'static str {
    PATHS.iter().copied().find(|p| *p == path).unwrap_or("other")
}

impl Metrics {
    /// Counts one answered request that started at `started`.
    pub fn observe(&self, path: &'static str, code: u16, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.requests.entry((path, code)).or_default() += 1;
        let h = inner.durations.entry(path).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Everything counted so far, in Prometheus's text format.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP http_requests_total Requests answered, by route and status code.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((path, code), n) in &inner.requests {
            let _ = writeln!(out, "http_requests_total{{path=\"{path}\",code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (path, h) in &inner.durations {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{path=\"{path}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{path=\"{path}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "http_request_duration_seconds_sum{{path=\"{path}\"}} {}", h.sum);
            let _ = writeln!(out, "http_request_duration_seconds_count{{path=\"{path}\"}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_by_code_and_cumulative_buckets() {
        let m = Metrics::default();
        let t = Instant::now();
        m.observe("/", 200, t);
        m.observe("/", 200, t);
        m.observe("/", 500, t);
        m.observe(path_label("/no/such/path"), 404, t - Duration::from_secs(20));
        let text = m.render();
        assert!(text.contains("http_requests_total{path=\"/\",code=\"200\"} 2\n"), "{text}");
        assert!(text.contains("http_requests_total{path=\"/\",code=\"500\"} 1\n"), "{text}");
        assert!(text.contains("http_requests_total{path=\"other\",code=\"404\"} 1\n"), "{text}");
        assert!(text.contains("http_request_duration_seconds_bucket{path=\"/\",le=\"10\"} 3\n"), "{text}");
        assert!(text.contains("http_request_duration_seconds_count{path=\"/\"} 3\n"), "{text}");
        // 20 s is beyond the last bound: only in +Inf.
        assert!(
            text.contains("http_request_duration_seconds_bucket{path=\"other\",le=\"10\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket{path=\"other\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
    }
}
