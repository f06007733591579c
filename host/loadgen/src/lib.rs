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
//!
//! With [`LoadSpec::sessions`], each worker is one user with a cookie jar, and
//! [`LoadReport::regressions`] counts ([`Regressions`]) the answers from an older release than one
//! that user had already been served: what sticky sessions are meant to prevent.

mod session;

use session::Jar;
pub use session::{Regressions, regressions};

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
    /// Each worker is one client that keeps its cookies (a browser's jar, for one site) and sends
    /// them with every request; its first request is answered before it sends more, as a page
    /// loads before the requests it makes. Off: no cookies are kept or sent.
    pub sessions: bool,
}

impl LoadSpec {
    /// `rate` requests per second (at least 1) to `/` of `target`, over 8 workers, 10 s timeout.
    pub fn new(target: SocketAddr, rate: u32) -> Self {
        Self {
            target,
            rate: rate.max(1),
            workers: 8,
            path: "/".into(),
            timeout: Duration::from_secs(10),
            sessions: false,
        }
    }
}

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was scheduled to be sent, since the load started (see `sent` for when it went out).
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
    /// The worker that sent it (with [`LoadSpec::sessions`], the client).
    pub client: usize,
    /// When it actually went out (with the client's cookies as they were then), since the load
    /// started.
    pub sent: Duration,
    /// When its answer (or failure) was complete, and its cookies kept, since the load started.
    pub done: Duration,
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
                let client = Client { id: i, keep_alive: i % 2 == 0, jar: Arc::default(), started };
                tokio::spawn(worker(spec, client, period, offset, samples, stop))
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

/// One worker: whether it keeps connections alive, and (sessions) its cookies.
#[derive(Clone)]
struct Client {
    id: usize,
    keep_alive: bool,
    jar: Arc<Jar>,
    started: Instant,
}

async fn worker(
    spec: LoadSpec,
    client: Client,
    period: Duration,
    offset: Duration,
    samples: Arc<Mutex<Vec<Sample>>>,
    mut stop: watch::Receiver<bool>,
) {
    let spec = Arc::new(spec);
    let idle: Pool = Arc::default();
    let started = client.started;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    // Open loop: a tick that comes late (a busy runtime) still sends, at once.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    if spec.sessions {
        // A session's first request is answered before the next go out, so its cookies are set
        // once rather than raced by concurrent first answers.
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let sample = send_one(&spec, &client, &idle, started.elapsed()).await;
        samples.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
    }
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
        let (spec, idle, samples, client) = (spec.clone(), idle.clone(), samples.clone(), client.clone());
        in_flight.spawn(async move {
            let sample = send_one(&spec, &client, &idle, at).await;
            samples.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
        });
    }
    // Requests already sent are answered (or time out) before the report is made.
    while in_flight.join_next().await.is_some() {}
}

/// A keep-alive worker's idle connections.
type Pool = Arc<Mutex<Vec<SendRequest<Empty<Bytes>>>>>;

/// One request sent at `at` (since the load started), and what became of it.
async fn send_one(spec: &LoadSpec, client: &Client, idle: &Pool, at: Duration) -> Sample {
    let t0 = Instant::now();
    // Until the request goes out; a transport failure has no other moment.
    let sent = Mutex::new(client.started.elapsed());
    let result = tokio::time::timeout(spec.timeout, request(spec, client, idle, &sent)).await;
    let latency = t0.elapsed();
    let sent = sent.into_inner().unwrap_or_else(|e| e.into_inner());
    let keep_alive = client.keep_alive;
    let base = Sample {
        at,
        latency,
        status: None,
        version: None,
        keep_alive,
        error: None,
        client: client.id,
        sent,
        done: client.started.elapsed(),
    };
    match result {
        Ok(Ok((status, version, done))) => Sample {
            status: Some(status),
            version,
            done,
            error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
            ..base
        },
        Ok(Err(e)) => Sample { error: Some(e), ..base },
        Err(_) => Sample { error: Some(format!("no answer within {:?}", spec.timeout)), ..base },
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

/// One request: (status, x-release-version, when it was complete). A keep-alive request takes an
/// idle connection of its worker (or opens one) and gives it back once the answer has been read.
/// `sent` is set to when the request goes out.
async fn request(
    spec: &LoadSpec,
    client: &Client,
    idle: &Pool,
    sent: &Mutex<Duration>,
) -> Result<(u16, Option<u64>, Duration), String> {
    let keep_alive = client.keep_alive;
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
    let (cookie, at) =
        if spec.sessions { client.jar.header(client.started) } else { (None, client.started.elapsed()) };
    if let Some(cookie) = cookie {
        req = req.header(hyper::header::COOKIE, cookie);
    }
    *sent.lock().unwrap_or_else(|e| e.into_inner()) = at;
    let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let version =
        resp.headers().get("x-release-version").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let (parts, body) = resp.into_parts();
    body.collect().await.map_err(|e| format!("body: {e}"))?;
    // Not to be sent on again, even before hyper notices the close.
    let closing = says_close(&parts.headers);
    let done = if spec.sessions {
        client.jar.keep(&parts.headers, client.started)
    } else {
        client.started.elapsed()
    };
    if keep_alive && !closing && !send.is_closed() {
        idle.lock().unwrap_or_else(|e| e.into_inner()).push(send);
    }
    Ok((status, version, done))
}

/// Whether an answer's `Connection` header says the server closes the connection after it (the
/// local proxy does every `max_requests_per_connection` requests).
pub fn says_close(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))))
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

    /// Answers from an older release than one their client had already been served (see
    /// [`regressions`]); meaningful for a [`LoadSpec::sessions`] load, where a worker is one client.
    pub fn regressions(&self) -> Regressions {
        regressions(&self.samples)
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
            client: 0,
            sent: Duration::from_millis(ms),
            done: Duration::from_millis(2 * ms),
        };
        let report = LoadReport { samples: (1..=100).map(|i| s(i, i != 50)).collect() };
        let w = report.window(Duration::ZERO, Duration::from_millis(101));
        assert_eq!((w.requests, w.failed), (100, 1));
        assert_eq!((w.p50_ms, w.p99_ms, w.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(w.errors, [("HTTP 502".to_string(), 1)]);
        assert_eq!(report.window(Duration::from_millis(91), Duration::from_millis(200)).requests, 10);
    }
}
