//! A load generator: steady HTTP traffic against an address, with every request's outcome kept, so a
//! deploy can be judged by what its users saw (failed requests, latency) rather than by its own logs.
//!
//! The load is *open-loop*: each worker sends on its own fixed schedule whether or not its earlier
//! requests have been answered, as independent users do. (A closed loop, where a worker waits for an
//! answer before sending again, hides an outage: while nothing answers, it sends almost nothing, so a
//! two-second gap costs one failed request per worker instead of the thousand users who arrived in it.)
//! A request's latency runs from its scheduled send time.
//!
//! Half the workers reuse HTTP/1.1 connections (as browsers and API clients do, and as a proxy must not
//! break when it moves traffic): each keeps its idle connections and opens another only when all are
//! busy. The other half open a new connection per request (as fresh visitors do). A request fails on a
//! transport error or a non-2xx answer; a broken connection is dropped, never reused.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What load to generate.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to send it (the app's proxy).
    pub target: SocketAddr,
    /// Requests per second, over all workers.
    pub rate: u32,
    /// Independent request schedules (half keep-alive, half new connection per request).
    pub workers: usize,
    /// The path every request asks for.
    pub path: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl LoadSpec {
    /// `rate` requests per second (at least 1) to `/` of `target`, over 8 workers, 10 s timeout.
    pub fn new(target: SocketAddr, rate: u32) -> Self {
        Self { target, rate: rate.max(1), workers: 8, path: "/".into(), timeout: Duration::from_secs(10) }
    }
}

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent, since the load started.
    pub at: Duration,
    /// From the scheduled send time to the whole answer (or the failure).
    pub latency: Duration,
    /// HTTP status, or `None` on a transport error.
    pub status: Option<u16>,
    /// The release that answered (`x-release-version`), when it says.
    pub version: Option<u64>,
    /// Whether it went out on a kept-alive connection (or a new one, closed after).
    pub keep_alive: bool,
    /// What went wrong, for failed requests.
    pub error: Option<String>,
}

impl Sample {
    /// Whether the user got what they asked for: a 2xx answer.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Load running in the background.
pub struct Load {
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Start the workers.
    pub fn start(spec: LoadSpec) -> Self {
        let started = Instant::now();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        let workers = spec.workers.max(2);
        let period = Duration::from_secs_f64(workers as f64 / f64::from(spec.rate));
        let tasks = (0..workers)
            .map(|i| {
                let spec = spec.clone();
                let samples = samples.clone();
                let stop = stop_rx.clone();
                // Stagger the workers so requests are spread over each period.
                let offset = period.mul_f64(i as f64 / workers as f64);
                tokio::spawn(worker(spec, i % 2 == 0, period, offset, started, samples, stop))
            })
            .collect();
        Self { started, samples, stop, tasks }
    }

    /// Time since the load started (to mark windows such as "during the deploy").
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stop the workers (requests in flight finish) and return every sample.
    pub async fn stop(self) -> LoadReport {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let mut samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        samples.sort_by_key(|s| s.at);
        LoadReport { samples }
    }
}

async fn worker(
    spec: LoadSpec,
    keep_alive: bool,
    period: Duration,
    offset: Duration,
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    mut stop: watch::Receiver<bool>,
) {
    let spec = Arc::new(spec);
    let idle: Pool = Arc::default();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    // Open loop: a tick that comes late (a busy runtime) still sends, at once.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        while in_flight.try_join_next().is_some() {}
        let at = started.elapsed();
        let (spec, idle, samples) = (spec.clone(), idle.clone(), samples.clone());
        in_flight.spawn(async move {
            let sample = send_one(&spec, keep_alive, &idle, at).await;
            samples.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
        });
    }
    // Requests already sent are answered (or time out) before the report is made.
    while in_flight.join_next().await.is_some() {}
}

/// A keep-alive worker's idle connections.
type Pool = Arc<Mutex<Vec<SendRequest<Empty<Bytes>>>>>;

/// One request sent at `at` (since the load started), and what became of it.
async fn send_one(spec: &LoadSpec, keep_alive: bool, idle: &Pool, at: Duration) -> Sample {
    let t0 = Instant::now();
    let result = tokio::time::timeout(spec.timeout, request(spec, keep_alive, idle)).await;
    let latency = t0.elapsed();
    match result {
        Ok(Ok((status, version))) => Sample {
            at,
            latency,
            status: Some(status),
            version,
            keep_alive,
            error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
        },
        Ok(Err(e)) => Sample { at, latency, status: None, version: None, keep_alive, error: Some(e) },
        Err(_) => {
            let error = Some(format!("no answer within {:?}", spec.timeout));
            Sample { at, latency, status: None, version: None, keep_alive, error }
        }
    }
}

async fn connect(target: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(target).await.map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// One request: (status, x-release-version). A keep-alive request takes an idle connection of its
/// worker (or opens one) and gives it back once the answer has been read.
async fn request(spec: &LoadSpec, keep_alive: bool, idle: &Pool) -> Result<(u16, Option<u64>), String> {
    let reused = if keep_alive { take_idle(idle) } else { None };
    let mut send = match reused {
        Some(send) => send,
        None => connect(spec.target).await?,
    };
    send.ready().await.map_err(|e| format!("connection: {e}"))?;
    let mut req = hyper::Request::get(&spec.path).header(hyper::header::HOST, spec.target.to_string());
    if !keep_alive {
        req = req.header(hyper::header::CONNECTION, "close");
    }
    let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let version =
        resp.headers().get("x-release-version").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?;
    if keep_alive && !send.is_closed() {
        idle.lock().unwrap_or_else(|e| e.into_inner()).push(send);
    }
    Ok((status, version))
}

/// An idle connection that is still open, if the worker has one.
fn take_idle(idle: &Pool) -> Option<SendRequest<Empty<Bytes>>> {
    let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
    while let Some(send) = idle.pop() {
        if !send.is_closed() {
            return Some(send);
        }
    }
    None
}

/// Every request of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// By send time.
    pub samples: Vec<Sample>,
}

/// Requests in a window, summarised.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadSummary {
    /// Requests sent in the window.
    pub requests: usize,
    /// Of those, the ones that did not get a 2xx answer.
    pub failed: usize,
    /// Median latency, in milliseconds (0 for an empty window).
    pub p50_ms: f64,
    /// 90th percentile latency, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// The slowest request, in milliseconds.
    pub max_ms: f64,
    /// (release version, requests it answered).
    pub by_version: Vec<(u64, usize)>,
    /// The first few distinct failures, with how often each happened.
    pub errors: Vec<(String, usize)>,
}

impl LoadReport {
    /// The requests sent in `[from, to)`.
    pub fn window(&self, from: Duration, to: Duration) -> LoadSummary {
        summarise(self.samples.iter().filter(|s| s.at >= from && s.at < to))
    }

    /// Every request.
    pub fn all(&self) -> LoadSummary {
        summarise(self.samples.iter())
    }
}

fn summarise<'a>(samples: impl Iterator<Item = &'a Sample>) -> LoadSummary {
    let samples: Vec<&Sample> = samples.collect();
    let mut latencies: Vec<f64> = samples.iter().map(|s| s.latency.as_secs_f64() * 1000.0).collect();
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    let mut by_version = std::collections::BTreeMap::new();
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for s in &samples {
        if let Some(v) = s.version {
            *by_version.entry(v).or_insert(0) += 1;
        }
        if let Some(e) = &s.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    let mut errors: Vec<(String, usize)> = errors.into_iter().collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    errors.truncate(5);
    LoadSummary {
        requests: samples.len(),
        failed: samples.iter().filter(|s| !s.ok()).count(),
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        by_version: by_version.into_iter().collect(),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dead_target_shows_up_as_failed_requests() {
        // Bind and drop: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let load = Load::start(LoadSpec { workers: 2, ..LoadSpec::new(addr, 200) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let report = load.stop().await;
        let all = report.all();
        assert!(all.requests > 0);
        assert_eq!(all.failed, all.requests, "{all:?}");
        assert!(all.errors[0].0.contains("connect"), "{all:?}");
    }

    #[test]
    fn percentiles_come_from_the_window() {
        let s = |ms: u64, ok: bool| Sample {
            at: Duration::from_millis(ms),
            latency: Duration::from_millis(ms),
            status: Some(if ok { 200 } else { 502 }),
            version: Some(1),
            keep_alive: true,
            error: (!ok).then(|| "HTTP 502".into()),
        };
        let report = LoadReport { samples: (1..=100).map(|i| s(i, i != 50)).collect() };
        let w = report.window(Duration::ZERO, Duration::from_millis(101));
        assert_eq!((w.requests, w.failed), (100, 1));
        assert_eq!((w.p50_ms, w.p99_ms, w.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(w.errors, [("HTTP 502".to_string(), 1)]);
        assert_eq!(report.window(Duration::from_millis(91), Duration::from_millis(200)).requests, 10);
    }
}
