//! `hello-cutover`: the example app that cutover deploys.
//!
//! `examples/app/fly.toml` describes this app, and the README's main command deploys it. On cutover's
//! local platform each "machine" is one process of this binary on its own port behind a proxy, so a
//! deploy of `registry.fly.io/hello-cutover:v2` really starts, checks, drains and stops processes while
//! a load generator counts failed requests. Every endpoint exists for one of those checks:
//!
//! - `GET /` answers `hello from v{version} on {machine} ({region})`, with `x-release-version` and
//!   `x-machine-id` headers, so the load generator can see which release and machine served it.
//! - `GET /health` is the fly.toml `[[http_service.checks]]` health check that gates each step.
//! - `GET /ws` is a WebSocket echo that stays open until the client closes it: a long-lived connection
//!   for drain tests (drain-then-destroy, bluegreen's cutover).
//! - `GET /slow?ms=N` answers after N ms: a request still in flight when a machine is stopped.
//!
//! On SIGINT (fly.toml's `kill_signal`) or SIGTERM it shuts down gracefully: it stops accepting at once,
//! lets in-flight requests finish, closes idle keep-alive connections, keeps open WebSockets until their
//! clients close them (the platform kills it after `kill_timeout` anyway), then exits 0. A second
//! signal exits at once with 1.
//!
//! `hello-cutover migrate [ARGS…]` is the app's release command (fly.toml's `[deploy] release_command =
//! "migrate"`): it prints what it migrates to (the release in `FLY_RELEASE_VERSION` and
//! `FLY_IMAGE_REF`), appends one line to the file `HELLO_MIGRATE_MARKER` names (release, image,
//! `RELEASE_COMMAND`, arguments) so a test can see it ran and with which environment, sleeps
//! `HELLO_MIGRATE_SLEEP_MS` first if set, and with `HELLO_MIGRATE_FAIL` set fails with exit code 3.
//!
//! A bad release needs no other binary: the image tag (after the last `:` of `FLY_IMAGE_REF`) switches
//! on misbehaviour — `unhealthy` (`/health` answers 500), `crash` (exit 1 at start), `slow-start`
//! (sleep `HELLO_SLOW_START_MS` before listening) and `errors` (`/` answers 500 for a
//! `HELLO_ERROR_RATE` share of requests) and `latency` (`/` answers `HELLO_EXTRA_LATENCY_MS` later).
//! `GET /metrics` counts requests by status and their latency for Prometheus (`metrics.rs`), so a
//! canary judge can compare releases. See README.md.

use std::env;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

mod metrics;
use metrics::Metrics;

const DEFAULT_SLOW_START_MS: u64 = 30_000;
const DEFAULT_ERROR_RATE: f64 = 0.5;
const DEFAULT_EXTRA_LATENCY_MS: u64 = 200;

/// Who this process is, from the variables Fly sets (cutover's local platform sets the same).
#[derive(Debug, Clone)]
struct Identity {
    machine_id: String,
    region: String,
    process_group: String,
    image: String,
    version: String,
}

impl Identity {
    fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
        };
        Identity {
            machine_id: var("FLY_MACHINE_ID", "local"),
            region: var("FLY_REGION", "local"),
            process_group: var("FLY_PROCESS_GROUP", "app"),
            image: var("FLY_IMAGE_REF", "hello-cutover:latest"),
            version: var("FLY_RELEASE_VERSION", "0"),
        }
    }
}

/// The tag of an image reference: after the last `:` of the name (`registry:5000/app` has none),
/// ignoring a `@sha256:…` digest.
fn image_tag(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "",
    }
}

/// Misbehaviour switched on by the image tag, to make a bad release out of this same binary.
#[derive(Debug, Default)]
struct Modes {
    unhealthy: bool,
    crash: bool,
    /// Sleep this long before listening.
    slow_start: Option<Duration>,
    /// `HELLO_START_DELAY_MS`: the start-up time of every release (a real app loads before it listens;
    /// this one would otherwise be ready in a millisecond, which hides what a strategy that restarts
    /// every machine at once costs its users).
    start_delay: Option<Duration>,
    /// Share of `/` requests to answer with 500.
    error_rate: Option<f64>,
    /// Time added to every `/` request (`latency` tag, `HELLO_EXTRA_LATENCY_MS`).
    extra_latency: Option<Duration>,
}

impl Modes {
    fn from_tag(tag: &str) -> Result<Self, String> {
        let slow_start = if tag.contains("slow-start") {
            Some(Duration::from_millis(env_or("HELLO_SLOW_START_MS", DEFAULT_SLOW_START_MS)?))
        } else {
            None
        };
        let error_rate = if tag.contains("errors") {
            let rate = env_or("HELLO_ERROR_RATE", DEFAULT_ERROR_RATE)?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("HELLO_ERROR_RATE={rate} is not between 0 and 1"));
            }
            Some(rate)
        } else {
            None
        };
        let extra_latency = if tag.contains("latency") {
            Some(Duration::from_millis(env_or("HELLO_EXTRA_LATENCY_MS", DEFAULT_EXTRA_LATENCY_MS)?))
        } else {
            None
        };
        let start_delay = match env_or("HELLO_START_DELAY_MS", 0u64)? {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        Ok(Modes {
            unhealthy: tag.contains("unhealthy"),
            crash: tag.contains("crash"),
            slow_start,
            start_delay,
            error_rate,
            extra_latency,
        })
    }

    fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.unhealthy {
            on.push("unhealthy".to_owned());
        }
        if let Some(d) = self.slow_start {
            on.push(format!("slow-start {}ms", d.as_millis()));
        }
        if let Some(rate) = self.error_rate {
            on.push(format!("errors {rate}"));
        }
        if let Some(d) = self.extra_latency {
            on.push(format!("latency +{}ms", d.as_millis()));
        }
        if on.is_empty() { String::new() } else { format!("; misbehaving: {}", on.join(", ")) }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().map_err(|_| format!("{name}={v:?} is not a valid value"))
        }
        _ => Ok(default),
    }
}

fn port_from_env() -> Result<u16, String> {
    match env::var("PORT") {
        Err(_) => Err("PORT is not set: hello-cutover listens on 127.0.0.1:$PORT (e.g. PORT=8080)".into()),
        Ok(v) => match v.trim().parse::<u16>() {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(format!("PORT={v:?} is not a port (1-65535)")),
        },
    }
}

struct App {
    id: Identity,
    modes: Modes,
    /// `/` requests so far, to spread injected errors evenly.
    requests: AtomicU64,
    /// Open WebSockets; shutdown waits for it to reach 0.
    websockets: watch::Sender<usize>,
    /// What `/metrics` shows.
    metrics: Metrics,
}

impl App {
    /// Whether this `/` request should fail: exactly `rate` of them, spread evenly.
    fn inject_error(&self) -> bool {
        let Some(rate) = self.modes.error_rate else { return false };
        let n = self.requests.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * rate).floor() > (n * rate).floor()
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [("x-release-version", &self.id.version), ("x-machine-id", &self.id.machine_id)]
        {
            if let Ok(value) = HeaderValue::from_str(value) {
                h.insert(name, value);
            }
        }
        h
    }
}

/// Counts one open WebSocket while alive.
struct WsGuard(watch::Sender<usize>);

impl WsGuard {
    fn new(counter: &watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        WsGuard(counter.clone())
    }
}

impl Drop for WsGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

async fn hello(State(app): State<Arc<App>>) -> Response {
    let id = &app.id;
    if let Some(extra) = app.modes.extra_latency {
        tokio::time::sleep(extra).await;
    }
    if app.inject_error() {
        let body = format!("injected error from v{} on {} (image tag errors)\n", id.version, id.machine_id);
        return (StatusCode::INTERNAL_SERVER_ERROR, app.headers(), body).into_response();
    }
    (app.headers(), format!("hello from v{} on {} ({})\n", id.version, id.machine_id, id.region))
        .into_response()
}

/// Counts every request by route and status, with its time to answer, for `/metrics`.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = metrics::path_label(request.uri().path());
    let response = next.run(request).await;
    app.metrics.observe(path, response.status().as_u16(), started);
    response
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let content_type = [("content-type", "text/plain; version=0.0.4; charset=utf-8")];
    (content_type, app.metrics.render()).into_response()
}

async fn health(State(app): State<Arc<App>>) -> Response {
    if app.modes.unhealthy {
        (StatusCode::INTERNAL_SERVER_ERROR, app.headers(), "unhealthy (image tag)").into_response()
    } else {
        (app.headers(), "ok").into_response()
    }
}

#[derive(Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

async fn slow(State(app): State<Arc<App>>, Query(params): Query<SlowParams>) -> Response {
    let ms = params.ms.unwrap_or(1000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    (app.headers(), format!("slept {ms}ms on {}\n", app.id.machine_id)).into_response()
}

async fn ws(State(app): State<Arc<App>>, upgrade: WebSocketUpgrade) -> Response {
    // Counted from here, not from the upgrade: the server forgets a connection once it is upgraded.
    let guard = WsGuard::new(&app.websockets);
    upgrade.on_upgrade(move |socket| echo(socket, guard))
}

async fn echo(mut socket: WebSocket, _guard: WsGuard) {
    // Pings are answered and a client's close is acknowledged by the protocol layer; recv ends then.
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && socket.send(msg).await.is_err() {
            break;
        }
    }
}

/// Counts SIGINT/SIGTERM into `signals`: the first starts the shutdown, a second exits at once.
async fn watch_signals(
    mut term: Signal,
    mut int: Signal,
    signals: watch::Sender<u32>,
    websockets: watch::Receiver<usize>,
) {
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let open = *websockets.borrow();
        if *signals.borrow() == 0 {
            eprintln!(
                "hello-cutover: {name}: shutting down: no new connections; finishing in-flight requests; \
                 {open} WebSocket(s) open"
            );
            signals.send_replace(1);
        } else {
            eprintln!("hello-cutover: {name} again: exiting now with {open} WebSocket(s) open");
            std::process::exit(1);
        }
    }
}

/// `hello-cutover migrate`: the release command; see the crate's comment.
fn migrate(args: &[String]) -> ExitCode {
    let id = Identity::from_env();
    let flag = env::var("RELEASE_COMMAND").unwrap_or_default();
    println!("hello-cutover migrate: migrating to v{} ({}), RELEASE_COMMAND={flag:?}", id.version, id.image);
    if let Some(ms) = env::var("HELLO_MIGRATE_SLEEP_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        println!("hello-cutover migrate: taking {ms}ms");
        std::thread::sleep(Duration::from_millis(ms));
    }
    if let Ok(path) = env::var("HELLO_MIGRATE_MARKER") {
        let line = format!("v{} {} RELEASE_COMMAND={flag} args={}\n", id.version, id.image, args.join(","));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(e) = written {
            eprintln!("hello-cutover migrate: cannot write the marker {path}: {e}");
            return ExitCode::from(1);
        }
    }
    if env::var_os("HELLO_MIGRATE_FAIL").is_some() {
        println!("hello-cutover migrate: applying 0002_add_orders");
        eprintln!("hello-cutover migrate: ERROR: relation \"orders\" already exists");
        return ExitCode::from(3);
    }
    println!("hello-cutover migrate: done");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    // Other arguments are ignored, as they always were: the server is configured by its environment.
    match args.first().map(String::as_str) {
        Some("migrate") => migrate(&args[1..]),
        _ => serve(),
    }
}

#[tokio::main]
async fn serve() -> ExitCode {
    let port = match port_from_env() {
        Ok(port) => port,
        Err(msg) => {
            eprintln!("hello-cutover: {msg}");
            return ExitCode::from(2);
        }
    };
    let id = Identity::from_env();
    let tag = image_tag(&id.image).to_owned();
    let modes = match Modes::from_tag(&tag) {
        Ok(modes) => modes,
        Err(msg) => {
            eprintln!("hello-cutover: {msg}");
            return ExitCode::from(2);
        }
    };
    if modes.crash {
        eprintln!("hello-cutover: crashing on purpose: image tag {tag:?} asks for it ({})", id.image);
        return ExitCode::from(1);
    }

    let (websockets, websockets_rx) = watch::channel(0usize);
    let (signals, mut signals_rx) = watch::channel(0u32);
    // Installed here, before anything is said or done, so that no signal meets the default action.
    let (Ok(term), Ok(int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        eprintln!("hello-cutover: cannot install signal handlers");
        return ExitCode::from(1);
    };
    tokio::spawn(watch_signals(term, int, signals, websockets_rx.clone()));

    if let Some(delay) = modes.slow_start.or(modes.start_delay) {
        eprintln!("hello-cutover: starting: {}ms before listening (image tag {tag:?})", delay.as_millis());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = signals_rx.wait_for(|n| *n > 0) => {
                eprintln!("hello-cutover: stopped before listening");
                return ExitCode::SUCCESS;
            }
        }
    }

    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("hello-cutover: cannot listen on 127.0.0.1:{port}: {err}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "hello-cutover: listening on http://127.0.0.1:{port} (v{} on {} in {}, group {}, image {}{})",
        id.version,
        id.machine_id,
        id.region,
        id.process_group,
        id.image,
        modes.describe()
    );

    let app =
        Arc::new(App { id, modes, requests: AtomicU64::new(0), websockets, metrics: Metrics::default() });
    let router = Router::new()
        .route("/", get(hello))
        .route("/health", get(health))
        .route("/ws", get(ws))
        .route("/slow", get(slow))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app);

    let mut shutdown = signals_rx.clone();
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|n| *n > 0).await;
        })
        .await;
    if let Err(err) = served {
        eprintln!("hello-cutover: server failed: {err}");
        return ExitCode::from(1);
    }
    // In-flight requests are done; upgraded connections are ours to wait for.
    let mut open = websockets_rx;
    let _ = open.wait_for(|n| *n == 0).await;
    eprintln!("hello-cutover: stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(image_tag("registry.fly.io/hello-cutover:v2"), "v2");
        assert_eq!(image_tag("localhost:5000/hello-cutover"), "");
        assert_eq!(image_tag("localhost:5000/hello-cutover:unhealthy"), "unhealthy");
        assert_eq!(image_tag("hello-cutover:crash@sha256:abcd"), "crash");
        assert_eq!(image_tag("hello-cutover"), "");
    }

    #[test]
    fn error_rate_is_spread_evenly() {
        let (websockets, _) = watch::channel(0);
        let id = Identity {
            machine_id: "m".into(),
            region: "r".into(),
            process_group: "app".into(),
            image: "i:errors".into(),
            version: "1".into(),
        };
        for (rate, of_100) in [(0.0, 0), (0.25, 25), (0.5, 50), (1.0, 100)] {
            let modes = Modes { error_rate: Some(rate), ..Modes::default() };
            let app = App {
                id: id.clone(),
                modes,
                requests: AtomicU64::new(0),
                websockets: websockets.clone(),
                metrics: Metrics::default(),
            };
            assert_eq!((0..100).filter(|_| app.inject_error()).count(), of_100, "rate {rate}");
        }
    }
}
