//! The local platform's proxy: one public loopback port in front of the machines (OS processes of the
//! user's app, each on its own loopback port).
//!
//! - HTTP mode terminates the client's HTTP/1.1 connection (keep-alive included) and picks a backend
//!   **per request**, forwarding over a pool of keep-alive connections per machine, so a client's
//!   keep-alive connection outlives the machine that served its previous request. `Upgrade` requests
//!   (WebSocket) are forwarded on a dedicated backend connection and, on `101`, the two upgraded
//!   streams are spliced; such a connection stays pinned to its machine until either side closes.
//! - TCP mode picks a backend per accepted connection and copies bytes both ways.
//!
//! Routing only ever considers the *routable* set ([`Proxy::set_backends`]: the daemon passes the
//! started, uncordoned, passing machines), split between releases by [`Proxy::set_weights`], then the
//! least busy machine of the chosen release (ties taken round-robin). Changing the set takes effect
//! before `set_backends` returns: every request routed to a machine from then on sees the new set,
//! and every request already routed to a removed machine is already counted in
//! [`Proxy::connections`] (so "cordoned and 0 connections" means drained). Requests in flight on a
//! removed machine complete.
//!
//! Zero failed requests across a deploy: a request whose backend refuses the connection (or whose
//! pooled connection turns out closed before the request went out) is retried on another routable
//! machine; an idempotent request with a replayable body is also retried when the backend drops the
//! connection before answering. With no routable machine at all the request waits (up to
//! [`ProxyOptions::empty_table_wait`]) for one to appear before it is answered `503`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::http::uri::{Authority, PathAndQuery};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

pub use super::stats::ReleaseStats;
use super::stats::{Recorder, Stats};

/// One routable machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    pub machine_id: String,
    /// The release the machine runs.
    pub version: u64,
    /// Where the machine's process listens (loopback).
    pub addr: SocketAddr,
}

/// What the proxy speaks on its public port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 (keep-alive, upgrades), routed per request.
    Http,
    /// Plain TCP, routed per connection.
    Tcp,
}

/// Tunables; [`Default`] is what [`Proxy::bind`] uses.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// How long a request (or TCP connection) waits for a routable machine when there is none
    /// before it is answered 503 (closed, in TCP mode).
    pub empty_table_wait: Duration,
    /// Attempts per request (or TCP connection), the first included.
    pub max_attempts: u32,
    /// Connecting to a backend takes at most this long.
    pub connect_timeout: Duration,
    /// A backend connection idle for this long is not reused (it is closed); keep it below the app's
    /// own keep-alive timeout so the app never closes a connection the proxy is about to reuse.
    pub pool_idle_timeout: Duration,
    /// Request bodies up to this size (known `Content-Length`) are buffered so that the request can
    /// be replayed on another machine; larger or chunked bodies are streamed and retried only when
    /// the failed attempt never touched them.
    pub replay_buffer: usize,
    /// [`Proxy::shutdown`] waits at most this long for open connections to finish.
    pub shutdown_grace: Duration,
    /// A client connection must send a request's head within this long; it is also how long an
    /// idle keep-alive client connection is kept (hyper times the wait for the next request too).
    /// `None`: no limit.
    pub client_header_timeout: Option<Duration>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            empty_table_wait: Duration::from_secs(3),
            max_attempts: 3,
            connect_timeout: Duration::from_secs(2),
            pool_idle_timeout: Duration::from_secs(4),
            replay_buffer: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            client_header_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// A handle on a running proxy; cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("local_addr", &self.inner.local_addr)
            .field("mode", &self.inner.mode)
            .finish()
    }
}

impl Proxy {
    /// Binds `listen` and spawns the accept loop on the current tokio runtime. The routable set
    /// starts empty.
    pub async fn bind(listen: SocketAddr, mode: Mode) -> io::Result<Proxy> {
        Self::bind_with(listen, mode, ProxyOptions::default()).await
    }

    pub async fn bind_with(listen: SocketAddr, mode: Mode, opts: ProxyOptions) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            mode,
            local_addr,
            opts,
            table: RwLock::new(Arc::new(Table::default())),
            config: Mutex::new(Config::default()),
            changed: Notify::new(),
            stats: Stats::new(),
            shutdown: watch::channel(false).0,
            tasks: Arc::new(Tasks::default()),
        });
        let task = inner.tasks.enter();
        tokio::spawn(accept_loop(inner.clone(), listener, task));
        Ok(Proxy { inner })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Replaces the routable set (started, uncordoned, passing machines). When this returns, no new
    /// request or connection goes to a machine outside `routable`, and every one already routed to
    /// such a machine is counted in [`Proxy::connections`]. A machine listed twice counts once.
    pub fn set_backends(&self, routable: Vec<Backend>) {
        let mut cfg = lock(&self.inner.config);
        cfg.routable = routable;
        self.inner.rebuild(&mut cfg);
    }

    /// The routable set last given to [`Proxy::set_backends`].
    pub fn backends(&self) -> Vec<Backend> {
        lock(&self.inner.config).routable.clone()
    }

    /// Splits new traffic between releases: `(version, percent)`. Empty: by machine count. A listed
    /// release with no routable machine gives its share to the other listed ones (the shares are
    /// normalised over the releases present); a routable release not listed gets no new traffic
    /// unless no listed release with a non-zero share has a routable machine, in which case the
    /// unlisted releases share it by machine count. Something routable always gets the traffic: when
    /// only 0% releases are routable, they share it by machine count.
    pub fn set_weights(&self, weights: Vec<(u64, u8)>) {
        let mut cfg = lock(&self.inner.config);
        cfg.weights = weights;
        self.inner.rebuild(&mut cfg);
    }

    pub fn weights(&self) -> Vec<(u64, u8)> {
        lock(&self.inner.config).weights.clone()
    }

    /// Active connections on a machine: requests in flight (until their response body is done),
    /// plus open upgraded (WebSocket) or TCP streams. Routable or not.
    pub fn connections(&self, machine_id: &str) -> u32 {
        lock(&self.inner.config).machines.get(machine_id).map_or(0, |m| m.active.load(Ordering::Acquire))
    }

    /// A release's requests, errors (5xx and connection failures) and latency percentiles over the
    /// last `window` (whole seconds, at most 10 minutes). See [`ReleaseStats`].
    pub fn stats(&self, version: u64, window: Duration) -> ReleaseStats {
        self.inner.stats.release(version, window)
    }

    /// Stops accepting, lets in-flight HTTP requests finish (idle keep-alive connections close),
    /// closes upgraded and TCP streams, and waits up to [`ProxyOptions::shutdown_grace`] for all of it.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let _ = tokio::time::timeout(self.inner.opts.shutdown_grace, self.inner.tasks.idle()).await;
    }
}

struct Inner {
    mode: Mode,
    local_addr: SocketAddr,
    opts: ProxyOptions,
    /// The routing snapshot the request path reads.
    table: RwLock<Arc<Table>>,
    /// What the snapshot is built from; writers only.
    config: Mutex<Config>,
    /// Signalled whenever the table changes (wakes requests waiting for a routable machine).
    changed: Notify,
    stats: Stats,
    shutdown: watch::Sender<bool>,
    tasks: Arc<Tasks>,
}

#[derive(Default)]
struct Config {
    routable: Vec<Backend>,
    weights: Vec<(u64, u8)>,
    machines: HashMap<String, Machine>,
}

/// A machine's connection counter (and its idle connections) outlive its presence in the table
/// (removed machines drain).
struct Machine {
    active: Arc<AtomicU32>,
    last_routable: Instant,
    addr: SocketAddr,
    pool: Arc<Pool>,
}

/// Idle HTTP/1.1 connections to one machine, the most recently used last. A connection goes back in
/// when its response body has been read to the end, and is handed out again only while it has been
/// idle for less than [`ProxyOptions::pool_idle_timeout`].
#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<(SendRequest<ReqBody>, Instant)>>,
}

/// Idle connections kept per machine at most.
const MAX_IDLE_PER_MACHINE: usize = 256;

impl Pool {
    fn checkout(&self, idle_timeout: Duration) -> Option<SendRequest<ReqBody>> {
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        while let Some((sender, since)) = idle.pop() {
            if !sender.is_closed() && now.duration_since(since) < idle_timeout {
                return Some(sender);
            }
        }
        None
    }

    fn checkin(&self, sender: SendRequest<ReqBody>, idle_timeout: Duration) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        // Oldest first: drop the ones that have been idle too long, so they are closed.
        let stale = idle.iter().take_while(|(_, since)| now.duration_since(*since) >= idle_timeout).count();
        idle.drain(..stale);
        if idle.len() < MAX_IDLE_PER_MACHINE {
            idle.push((sender, now));
        }
    }
}

/// How long a machine's counter is kept once it is idle and out of the routable set.
const FORGET_MACHINE_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Table {
    groups: Vec<Group>,
    total_weight: u64,
    seq: AtomicU64,
}

/// One release's routable machines and its weight.
struct Group {
    weight: u64,
    backends: Vec<Arc<Entry>>,
    rr: AtomicUsize,
}

struct Entry {
    machine_id: String,
    addr: SocketAddr,
    authority: Authority,
    active: Arc<AtomicU32>,
    recorder: Arc<Recorder>,
    pool: Arc<Pool>,
}

impl Inner {
    fn rebuild(&self, cfg: &mut Config) {
        let now = Instant::now();
        let Config { routable, weights, machines } = cfg;
        let mut groups: Vec<(u64, Vec<Arc<Entry>>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in routable.iter() {
            if !seen.insert(b.machine_id.as_str()) {
                continue;
            }
            let machine = machines.entry(b.machine_id.clone()).or_insert_with(|| Machine {
                active: Arc::new(AtomicU32::new(0)),
                last_routable: now,
                addr: b.addr,
                pool: Arc::default(),
            });
            machine.last_routable = now;
            if machine.addr != b.addr {
                machine.addr = b.addr;
                machine.pool = Arc::default();
            }
            let entry = Arc::new(Entry {
                machine_id: b.machine_id.clone(),
                addr: b.addr,
                authority: Authority::try_from(b.addr.to_string()).expect("a socket address is an authority"),
                active: machine.active.clone(),
                recorder: self.stats.recorder(b.version),
                pool: machine.pool.clone(),
            });
            match groups.iter_mut().find(|(v, _)| *v == b.version) {
                Some((_, list)) => list.push(entry),
                None => groups.push((b.version, vec![entry])),
            }
        }
        machines.retain(|_, m| {
            m.active.load(Ordering::Acquire) > 0 || now.duration_since(m.last_routable) < FORGET_MACHINE_AFTER
        });
        // A machine out of rotation gets no new requests: close its idle connections.
        for (id, m) in machines.iter() {
            if !seen.contains(id.as_str()) {
                lock(&m.pool.idle).clear();
            }
        }

        // Listed releases share by their percentages. When none of them has a routable machine (or
        // all of theirs are 0%), the unlisted routable releases share by machine count; and when
        // only 0% releases are routable they do too, rather than refuse the traffic.
        let listed = |version: u64| weights.iter().find(|(v, _)| *v == version).map(|&(_, w)| u64::from(w));
        let any_positive = groups.iter().any(|(v, _)| listed(*v).is_some_and(|w| w > 0));
        let any_unlisted = groups.iter().any(|(v, _)| listed(*v).is_none());
        let groups: Vec<Group> = groups
            .into_iter()
            .map(|(v, backends)| {
                let count = backends.len() as u64;
                let weight = match listed(v) {
                    _ if weights.is_empty() => count,
                    Some(w) if any_positive => w,
                    None if any_positive => 0,
                    Some(_) if any_unlisted => 0,
                    _ => count,
                };
                Group { weight, backends, rr: AtomicUsize::new(0) }
            })
            .filter(|g| g.weight > 0)
            .collect();
        let total_weight = groups.iter().map(|g| g.weight).sum();
        let table = Arc::new(Table { groups, total_weight, seq: AtomicU64::new(0) });
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
        self.changed.notify_waiters();

        let keep: Vec<u64> = routable.iter().map(|b| b.version).chain(weights.iter().map(|w| w.0)).collect();
        self.stats.prune(|v| keep.contains(&v));
    }

    /// Picks a machine for a new request/connection, avoiding `tried` ones when it can, and counts
    /// it as active on that machine before the table lock is released. `None`: nothing routable.
    fn try_pick(&self, tried: &[Arc<Entry>]) -> Option<(Arc<Entry>, ActiveGuard)> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let group = table.choose()?;
        let entry = group
            .least_busy(tried)
            .or_else(|| table.groups.iter().find_map(|g| g.least_busy(tried)))
            .or_else(|| group.least_busy(&[]))?;
        let guard = ActiveGuard::new(&entry.active);
        drop(table);
        Some((entry, guard))
    }

    /// [`Inner::try_pick`], waiting up to `empty_table_wait` for the table to hold a machine.
    async fn pick(&self, tried: &[Arc<Entry>]) -> Option<(Arc<Entry>, ActiveGuard)> {
        // The usual case, without registering for table changes.
        if let Some(picked) = self.try_pick(tried) {
            return Some(picked);
        }
        let deadline = tokio::time::Instant::now() + self.opts.empty_table_wait;
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            if let Some(picked) = self.try_pick(tried) {
                return Some(picked);
            }
            if *self.shutdown.borrow() || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    // ---- HTTP ----

    /// `peer`: the client's IP address, as a header value.
    async fn handle_http(
        self: Arc<Self>,
        peer: HeaderValue,
        mut req: Request<Incoming>,
    ) -> Response<RespBody> {
        let start = Instant::now();
        if req.method() == Method::CONNECT {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported");
        }
        let upgrade = upgrade_protocol(req.headers());
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        prepare_request_headers(&mut parts.headers, &peer, upgrade.as_ref());

        let body = if body.is_end_stream() {
            Replay::Bytes(Bytes::new())
        } else if body.size_hint().exact().is_some_and(|n| n <= self.opts.replay_buffer as u64) {
            match body.collect().await {
                Ok(collected) => {
                    // The client has sent its body already (hyper answered its `100-continue`).
                    parts.headers.remove(header::EXPECT);
                    Replay::Bytes(collected.to_bytes())
                }
                Err(e) => {
                    tracing::debug!(error = %e, "proxy: reading the request body failed");
                    return plain(StatusCode::BAD_REQUEST, "could not read the request body");
                }
            }
        } else {
            let hint = body.size_hint();
            Replay::Once { slot: Arc::new(Mutex::new(Some(body))), hint }
        };

        let attempts = self.opts.max_attempts.max(1);
        let mut tried: Vec<Arc<Entry>> = Vec::new();
        for attempt in 0..attempts {
            let Some((entry, guard)) = self.pick(&tried).await else { break };
            if attempt > 0 && tried.iter().any(|t| t.machine_id == entry.machine_id) {
                // Nothing untried left: give the machine (or the table) a moment.
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            let result = if upgrade.is_some() {
                match build_request(&parts, &entry, body.body()) {
                    Some(request) => self.send_upgrade(entry.addr, request).await.map(|r| (r, None)),
                    None => return plain(StatusCode::BAD_REQUEST, "bad request target"),
                }
            } else {
                match self.send_pooled(&entry, &parts, &body).await {
                    Ok((resp, sender)) => Ok((resp, Some(sender))),
                    Err(Some(failure)) => Err(failure),
                    Err(None) => return plain(StatusCode::BAD_REQUEST, "bad request target"),
                }
            };
            match result {
                Ok((resp, sender)) => return self.respond(resp, entry, guard, start, client_upgrade, sender),
                Err(failure) => {
                    drop(guard);
                    tried.push(entry);
                    let retry = match failure {
                        Failure::NotSent => body.available(),
                        Failure::MaybeSent => is_idempotent(&parts.method) && body.replayable(),
                    };
                    if !retry {
                        break;
                    }
                }
            }
        }
        match tried.last() {
            Some(entry) => {
                entry.recorder.record(Instant::now(), None, true);
                plain(StatusCode::BAD_GATEWAY, "bad gateway: the machine did not answer")
            }
            None => plain(StatusCode::SERVICE_UNAVAILABLE, "no machine is available"),
        }
    }

    /// Sends a request on one of the machine's idle connections, or a new one. A reused connection
    /// that turns out closed before the request went out is not the machine's fault: the next one
    /// (finally a new connection) is tried. `Err(None)`: no request can be built (see
    /// [`build_request`]).
    async fn send_pooled(
        &self,
        entry: &Entry,
        parts: &Parts,
        body: &Replay,
    ) -> Result<(Response<Incoming>, SendRequest<ReqBody>), Option<Failure>> {
        loop {
            let (mut sender, reused) = match entry.pool.checkout(self.opts.pool_idle_timeout) {
                Some(sender) => (sender, true),
                None => (self.connect_backend(entry).await.map_err(Some)?, false),
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(Some(Failure::NotSent));
            }
            let request = build_request(parts, entry, body.body()).ok_or(None)?;
            match sender.send_request(request).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(e) if e.is_canceled() && reused && body.available() => {
                    let machine = &entry.machine_id;
                    tracing::debug!(%machine, error = %e, "proxy: pooled connection closed");
                }
                Err(e) => {
                    tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: backend request failed");
                    return Err(Some(if e.is_canceled() { Failure::NotSent } else { Failure::MaybeSent }));
                }
            }
        }
    }

    /// A new keep-alive connection to a machine.
    async fn connect_backend(&self, entry: &Entry) -> Result<SendRequest<ReqBody>, Failure> {
        let stream =
            match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(entry.addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: backend connect failed");
                    return Err(Failure::NotSent);
                }
                Err(_) => {
                    tracing::debug!(machine = %entry.machine_id, "proxy: backend connect timed out");
                    return Err(Failure::NotSent);
                }
            };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::NotSent)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "proxy: backend connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends an upgrade request on a fresh connection of its own (it will carry the upgraded stream).
    async fn send_upgrade(
        &self,
        addr: SocketAddr,
        req: Request<ReqBody>,
    ) -> Result<Response<Incoming>, Failure> {
        let stream = match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => return Err(Failure::NotSent),
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::NotSent)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "proxy: upgrade backend connection ended");
            }
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| if e.is_canceled() { Failure::NotSent } else { Failure::MaybeSent })
    }

    fn respond(
        &self,
        mut resp: Response<Incoming>,
        entry: Arc<Entry>,
        guard: ActiveGuard,
        start: Instant,
        client_upgrade: Option<OnUpgrade>,
        sender: Option<SendRequest<ReqBody>>,
    ) -> Response<RespBody> {
        let status = resp.status();
        entry.recorder.record(Instant::now(), Some(start.elapsed()), status.is_server_error());
        if status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            let (mut parts, _) = resp.into_parts();
            let protocol = upgrade_protocol(&parts.headers);
            strip_hop_by_hop(&mut parts.headers);
            if let Some(protocol) = protocol {
                parts.headers.insert(header::UPGRADE, protocol);
                parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            }
            let task = self.tasks.enter();
            let stop = self.shutdown_signal();
            tokio::spawn(splice(client_upgrade, backend_upgrade, guard, stop, task));
            return Response::from_parts(parts, RespBody::Full(None));
        }
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let idle_timeout = self.opts.pool_idle_timeout;
        let mut checkin = sender.map(|sender| Checkin { sender, pool: entry.pool.clone(), idle_timeout });
        if body.is_end_stream()
            && let Some(c) = checkin.take()
        {
            c.done();
        }
        Response::from_parts(parts, RespBody::Proxied { body, _guard: guard, checkin })
    }

    // ---- TCP ----

    async fn serve_tcp(self: Arc<Self>, mut client: TcpStream, _task: TaskGuard) {
        let start = Instant::now();
        let mut tried: Vec<Arc<Entry>> = Vec::new();
        for attempt in 0..self.opts.max_attempts.max(1) {
            let Some((entry, guard)) = self.pick(&tried).await else { break };
            if attempt > 0 && tried.iter().any(|t| t.machine_id == entry.machine_id) {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(entry.addr)).await {
                Ok(Ok(mut backend)) => {
                    let _ = backend.set_nodelay(true);
                    entry.recorder.record(Instant::now(), Some(start.elapsed()), false);
                    tokio::select! {
                        r = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
                            if let Err(e) = r {
                                tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: tcp stream ended");
                            }
                        }
                        () = self.shutdown_signal() => {}
                    }
                    drop(guard);
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: tcp connect failed")
                }
                Err(_) => tracing::debug!(machine = %entry.machine_id, "proxy: tcp connect timed out"),
            }
            drop(guard);
            tried.push(entry);
        }
        if let Some(entry) = tried.last() {
            entry.recorder.record(Instant::now(), None, true);
        }
    }
}

impl Table {
    /// The release a new request goes to: a low-discrepancy (golden ratio) sequence over the
    /// cumulative weights, so shares are exact over short runs and canary requests are spread out.
    fn choose(&self) -> Option<&Group> {
        match self.groups.len() {
            0 => None,
            1 => self.groups.first(),
            _ => {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                let frac = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
                let mut point = (frac * self.total_weight) >> 32;
                for g in &self.groups {
                    if point < g.weight {
                        return Some(g);
                    }
                    point -= g.weight;
                }
                self.groups.last()
            }
        }
    }
}

impl Group {
    /// The machine with the fewest active connections outside `exclude`; ties go round-robin.
    fn least_busy(&self, exclude: &[Arc<Entry>]) -> Option<Arc<Entry>> {
        let n = self.backends.len();
        let start = if n > 1 { self.rr.fetch_add(1, Ordering::Relaxed) } else { 0 };
        let mut best: Option<(&Arc<Entry>, u32)> = None;
        for i in 0..n {
            let e = &self.backends[(start + i) % n];
            if exclude.iter().any(|x| x.machine_id == e.machine_id) {
                continue;
            }
            let active = e.active.load(Ordering::Relaxed);
            if best.is_none_or(|(_, b)| active < b) {
                best = Some((e, active));
            }
        }
        best.map(|(e, _)| e.clone())
    }
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    /// The request never reached the backend (connection refused, or the pooled connection was
    /// found closed before the request went out).
    NotSent,
    /// It may have: the backend dropped the connection before answering.
    MaybeSent,
}

fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// The `Upgrade` header's value when the request (or response) asks for a protocol upgrade.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?;
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    wants.then(|| upgrade.clone())
}

static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Removes the hop-by-hop headers: the standard ones and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        strip_connection_named(headers);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes the headers the `Connection` header names.
fn strip_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if name != header::CONTENT_LENGTH && name != header::HOST {
            headers.remove(name);
        }
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// `peer`: the client's IP address, as a header value.
fn prepare_request_headers(headers: &mut HeaderMap, peer: &HeaderValue, upgrade: Option<&HeaderValue>) {
    strip_hop_by_hop(headers);
    if headers.contains_key(&X_FORWARDED_FOR) {
        append_forwarded_for(headers, peer);
    } else {
        headers.insert(X_FORWARDED_FOR.clone(), peer.clone());
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::UPGRADE, protocol.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// `X-Forwarded-For`, every value the client sent, then `peer`, as one value.
fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let mut forwarded: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    forwarded.push(peer.to_str().unwrap_or_default().to_owned());
    let forwarded = forwarded.join(", ");
    if let Ok(v) = HeaderValue::try_from(forwarded) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// The request for one attempt, in origin form, with a `Host` (the machine's address when the client
/// sent none). `None` when that makes no header.
fn build_request(parts: &Parts, entry: &Entry, body: ReqBody) -> Option<Request<ReqBody>> {
    let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = Uri::from(path);
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = parts.headers.clone();
    if !req.headers().contains_key(header::HOST) {
        req.headers_mut().insert(header::HOST, HeaderValue::from_str(entry.authority.as_str()).ok()?);
    }
    Some(req)
}

fn plain(status: StatusCode, message: &'static str) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Full(Some(Bytes::from_static(message.as_bytes()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

async fn splice(
    client: OnUpgrade,
    backend: OnUpgrade,
    guard: ActiveGuard,
    stop: impl Future<Output = ()>,
    _task: TaskGuard,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "proxy: upgrade failed");
            return;
        }
    };
    tokio::select! {
        () = pipe_with_linger(TokioIo::new(client), TokioIo::new(backend), UPGRADE_LINGER) => {}
        () = stop => {}
    }
    drop(guard);
}

/// After one side of an upgraded stream has closed, how long the other direction may still run.
const UPGRADE_LINGER: Duration = Duration::from_secs(5);

/// Copies both ways; once one direction ends (its writer shut down in turn), the other gets
/// `linger` to finish, so a peer that never closes its half cannot keep the machine busy forever.
async fn pipe_with_linger<A, B>(a: A, b: B, linger: Duration)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::AsyncWriteExt;
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut a_to_b = pin!(async move {
        let r = tokio::io::copy(&mut ar, &mut bw).await;
        let _ = bw.shutdown().await;
        r
    });
    let mut b_to_a = pin!(async move {
        let r = tokio::io::copy(&mut br, &mut aw).await;
        let _ = aw.shutdown().await;
        r
    });
    let first = tokio::select! {
        r = a_to_b.as_mut() => { (r, tokio::time::timeout(linger, b_to_a).await) }
        r = b_to_a.as_mut() => { (r, tokio::time::timeout(linger, a_to_b).await) }
    };
    tracing::trace!(result = ?first, "proxy: upgraded stream ended");
}

// ---- accepting ----

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, _task: TaskGuard) {
    let mut stop = pin!(inner.shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let task = inner.tasks.enter();
        match inner.mode {
            Mode::Http => tokio::spawn(serve_http_conn(inner.clone(), stream, peer, task)),
            Mode::Tcp => tokio::spawn(inner.clone().serve_tcp(stream, task)),
        };
    }
}

async fn serve_http_conn(inner: Arc<Inner>, stream: TcpStream, peer: SocketAddr, _task: TaskGuard) {
    let stop = inner.shutdown_signal();
    let service_inner = inner.clone();
    // Formatted once per connection, for every request's X-Forwarded-For.
    let peer = HeaderValue::try_from(peer.ip().to_string()).expect("an IP address is a header value");
    let service = hyper::service::service_fn(move |req| {
        let inner = service_inner.clone();
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(inner.handle_http(peer, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(inner.opts.client_header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "proxy: client connection ended");
            }
        }
        () = stop => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

// ---- bodies ----

/// A request body as kept across attempts.
enum Replay {
    /// Buffered (or empty): any number of attempts.
    Bytes(Bytes),
    /// Streamed: whichever attempt polls it first takes it; a failed attempt that never polled it
    /// leaves it for the next one.
    Once { slot: Arc<Mutex<Option<Incoming>>>, hint: SizeHint },
}

impl Replay {
    fn body(&self) -> ReqBody {
        match self {
            Replay::Bytes(b) => ReqBody::Bytes(Some(b.clone())),
            Replay::Once { slot, hint } => ReqBody::Once { slot: slot.clone(), body: None, hint: *hint },
        }
    }

    /// Whether another attempt can still send the whole body.
    fn available(&self) -> bool {
        match self {
            Replay::Bytes(_) => true,
            Replay::Once { slot, .. } => lock(slot).is_some(),
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, Replay::Bytes(_))
    }
}

/// The body sent to a backend.
enum ReqBody {
    Bytes(Option<Bytes>),
    Once { slot: Arc<Mutex<Option<Incoming>>>, body: Option<Incoming>, hint: SizeHint },
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Bytes(b) => Poll::Ready(b.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            ReqBody::Once { slot, body, .. } => {
                if body.is_none() {
                    *body = lock(slot).take();
                }
                match body {
                    Some(body) => Pin::new(body).poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Bytes(b) => b.as_ref().is_none_or(Bytes::is_empty),
            ReqBody::Once { body: Some(body), .. } => body.is_end_stream(),
            ReqBody::Once { hint, .. } => hint.exact() == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Once { body: Some(body), .. } => body.size_hint(),
            ReqBody::Once { hint, .. } => *hint,
        }
    }
}

/// The body sent to the client; a proxied one holds its machine's active count until it is done, and
/// gives its connection back to the machine's pool once read to the end.
enum RespBody {
    Full(Option<Bytes>),
    Proxied { body: Incoming, _guard: ActiveGuard, checkin: Option<Checkin> },
}

/// A pooled connection to give back once its response is read.
struct Checkin {
    sender: SendRequest<ReqBody>,
    pool: Arc<Pool>,
    idle_timeout: Duration,
}

impl Checkin {
    fn done(self) {
        self.pool.checkin(self.sender, self.idle_timeout);
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Proxied { body, checkin, .. } => {
                let frame = Pin::new(&mut *body).poll_frame(cx);
                let finished = match &frame {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Ready(Some(Err(_))) => {
                        // A broken connection is not reused.
                        *checkin = None;
                        false
                    }
                    Poll::Pending => false,
                };
                if finished && let Some(c) = checkin.take() {
                    c.done();
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(b) => b.is_none(),
            RespBody::Proxied { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Proxied { body, .. } => body.size_hint(),
        }
    }
}

// ---- counters ----

/// One active connection on a machine, for as long as it lives.
struct ActiveGuard(Arc<AtomicU32>);

impl ActiveGuard {
    fn new(counter: &Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(counter.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open connection tasks, so that shutdown can wait for them.
#[derive(Default)]
struct Tasks {
    open: AtomicUsize,
    idle: Notify,
}

struct TaskGuard(Arc<Tasks>);

impl Tasks {
    fn enter(self: &Arc<Self>) -> TaskGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.clone())
    }

    async fn idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
