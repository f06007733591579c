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
//! started, uncordoned, passing machines), split between releases by [`Proxy::set_weights`] (or,
//! with sticky sessions, the release a client's cookie pins: see `affinity`), then the least busy
//! machine of the chosen release (ties taken round-robin). Changing the set takes effect
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
//!
//! The proxy's parts, each in its own module, depend on each other one way:
//!
//! - `counters`: the active connections on each machine and from each client address, and the
//!   proxy's open tasks.
//! - `framing` and `guard`: every client byte is scanned before hyper reads it, so only request heads
//!   with plain framing reach hyper (no request smuggling), each within the head bounds.
//! - `headers`: hop-by-hop headers stripped, `X-Forwarded-*` added.
//! - `pool`: each machine's idle keep-alive connections.
//! - `body`: request bodies kept for retries, response bodies that hold their machine's count.
//! - `table`: the routing table and the pick of a machine (uses `pool`, `body`, `counters`).
//! - `affinity`: sticky sessions: the `cutover-release` cookie (`Pin`) and the release a pinned
//!   client gets (`Table::choose_pinned`, over `table`'s snapshot). The one pair that knows each
//!   other: `table` picks with the pin, `affinity` chooses among `table`'s groups.
//! - `splice`: upgraded (WebSocket) streams copied both ways.
//! - `tcp`: TCP mode, one machine per connection (uses `table`).
//! - `http`: HTTP mode, one machine per request, with its retries (uses all of the above).
//! - `balance`: which of the proxy's threads serves a connection: short-lived ones where they are
//!   accepted, lasting ones spread evenly.
//! - `lean`: HTTP mode's usual path, the same routing, counting and retries without hyper, for
//!   plain HTTP/1.1 requests; it hands a connection to `http` at the first request it leaves alone.
//!
//! This module holds the public handle, the state the parts share (`Inner`, to which `table`,
//! `http` and `tcp` each add their methods) and the accept loop, which closes a client's connections
//! beyond [`ProxyLimits::max_connections_per_client`] as they are accepted.
//!
//! What one client may hold ([`ProxyLimits`]): a request head must arrive within
//! `header_timeout` (hyper's own timer: the connection is closed) and within `max_header_bytes` and
//! `max_headers` (431); a head with ambiguous framing is refused with 400 (see `framing`). None of
//! these requests reaches a machine. A keep-alive connection carries `max_requests_per_connection`
//! requests, its last answered with `Connection: close` (on both paths, counted across a hand-over).

mod affinity;
mod balance;
mod body;
mod counters;
mod framing;
mod guard;
mod headers;
mod http;
mod lean;
mod pool;
mod splice;
mod table;
mod tcp;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use crate::stats::ReleaseStats;
use crate::stats::Stats;
pub use affinity::COOKIE_NAME;
use counters::{ClientCounts, TaskGuard, Tasks};
pub use cutover_core::ProxyLimits;
use table::{Config, Table};

/// One routable machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    /// The machine's id: what its connection count is kept and asked for under.
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
    /// What one client may hold: head timeout and bounds, connections per address (see
    /// [`ProxyLimits`]; [`Proxy::set_client_limits`] changes them on a running proxy). The header
    /// timeout is also how long an idle keep-alive client connection is kept (hyper times the wait
    /// for the next request too).
    pub clients: ProxyLimits,
    /// Threads of the proxy's own, each a single-threaded runtime that accepts connections and
    /// serves each from start to end, its backend connections included: a request never moves
    /// between threads and no thread has to wake another (on a work-stealing runtime that cost
    /// more than the routing itself; see BENCHMARKS.md, issue 20). 0 runs the proxy on the runtime
    /// that binds it. Default: one per core.
    pub threads: usize,
    /// Forward plain HTTP/1.1 and 1.0 requests on the lean path (the bytes as the guard checked them,
    /// over pooled plain sockets; see BENCHMARKS.md, issue 20) and hand a connection to hyper only at
    /// the first request it does not handle (an upgrade, `Expect`, a chunked or large body, a head the
    /// guard refuses). `false` sends every request through hyper. Default: `true`.
    pub lean: bool,
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
            clients: ProxyLimits::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            lean: true,
        }
    }
}

/// A handle on a running proxy; cheap to clone. A proxy on threads of its own
/// ([`ProxyOptions::threads`]) shuts down when its last handle is dropped, as one on the caller's
/// runtime stops with that runtime.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
    /// The proxy's own threads' shares of its connections (none on the caller's runtime).
    threads: Option<Arc<balance::Threads>>,
}

/// Shuts a proxy with threads of its own down when the last handle goes.
struct Owner(Option<Arc<Inner>>);

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(inner) = &self.0 {
            inner.shutdown.send_replace(true);
        }
    }
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
    /// Binds `listen` and starts accepting: on threads of the proxy's own, or on the current tokio
    /// runtime when [`ProxyOptions::threads`] is 0. The routable set starts empty.
    pub async fn bind(listen: SocketAddr, mode: Mode) -> io::Result<Proxy> {
        Self::bind_with(listen, mode, ProxyOptions::default()).await
    }

    /// [`Proxy::bind`] with other tunables (the local daemon waits less for an empty table).
    pub async fn bind_with(listen: SocketAddr, mode: Mode, opts: ProxyOptions) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?.into_std()?;
        if mode == Mode::Http {
            defer_accept(&listener);
        }
        let local_addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            mode,
            local_addr,
            clients: RwLock::new(opts.clients),
            per_client: Arc::new(ClientCounts::default()),
            opts,
            table: RwLock::new(Arc::new(Table::default())),
            config: Mutex::new(Config::default()),
            changed: Notify::new(),
            stats: Stats::new(),
            cookie_key: affinity::CookieKey::new(),
            shutdown: watch::channel(false).0,
            tasks: Arc::new(Tasks::default()),
        });
        if inner.opts.threads == 0 {
            let task = inner.tasks.enter();
            tokio::spawn(accept_loop(inner.clone(), Some(Listener::new(listener)?), task, None));
            return Ok(Proxy { inner, _owner: Arc::new(Owner(None)), threads: None });
        }
        let (threads, inboxes) = balance::Threads::new(inner.opts.threads);
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let listener = if index == balance::ACCEPTOR { Some(listener.try_clone()?) } else { None };
            let task = inner.tasks.enter();
            let inner = inner.clone();
            // One thread has no other to spread to.
            let balance =
                (inner.opts.threads > 1).then(|| Balance { me: index, threads: threads.clone(), inbox });
            std::thread::Builder::new()
                .name(format!("proxy-{}-{index}", local_addr.port()))
                .spawn(move || serve_thread(inner, listener, index, task, balance))?;
        }
        Ok(Proxy { _owner: Arc::new(Owner(Some(inner.clone()))), inner, threads: Some(threads) })
    }

    /// The client connections each of the proxy's own threads serves now (see `balance`); empty for
    /// a proxy on the caller's runtime.
    pub fn connections_per_thread(&self) -> Vec<usize> {
        self.threads.as_ref().map(|t| t.open()).unwrap_or_default()
    }

    /// Where the proxy listens: `listen` with the port the OS picked when it was 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// What the proxy speaks on its public port.
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

    /// The weights last given to [`Proxy::set_weights`] (empty: by machine count).
    pub fn weights(&self) -> Vec<(u64, u8)> {
        lock(&self.inner.config).weights.clone()
    }

    /// Active connections on a machine: requests in flight (until their response body is done),
    /// plus open upgraded (WebSocket) or TCP streams. Routable or not.
    pub fn connections(&self, machine_id: &str) -> u32 {
        lock(&self.inner.config).machines.get(machine_id).map_or(0, |m| m.active.load(Ordering::Acquire))
    }

    /// Replaces what one client may hold; connections accepted from then on get the new bounds.
    pub fn set_client_limits(&self, limits: ProxyLimits) {
        *self.inner.clients.write().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// What one client may hold, as last set.
    pub fn client_limits(&self) -> ProxyLimits {
        *self.inner.clients.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections open from a client address (HTTP, upgraded or TCP).
    pub fn client_connections(&self, client: IpAddr) -> u32 {
        self.inner.per_client.open(client)
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

/// What the proxy's tasks share: the routing table and what it is built from, the statistics, and
/// the shutdown signal with the tasks it waits for.
struct Inner {
    mode: Mode,
    local_addr: SocketAddr,
    opts: ProxyOptions,
    /// What one client may hold (from `opts.clients`, changed by [`Proxy::set_client_limits`]).
    clients: RwLock<ProxyLimits>,
    /// Open connections per client address.
    per_client: Arc<ClientCounts>,
    /// The routing snapshot the request path reads.
    table: RwLock<Arc<Table>>,
    /// What the snapshot is built from; writers only.
    config: Mutex<Config>,
    /// Signalled whenever the table changes (wakes requests waiting for a routable machine).
    changed: Notify,
    stats: Stats,
    /// The key of the sticky sessions' cookie (see `affinity`).
    cookie_key: affinity::CookieKey,
    /// `true` once [`Proxy::shutdown`] was called.
    shutdown: watch::Sender<bool>,
    tasks: Arc<Tasks>,
}

impl Inner {
    /// Resolves once the proxy is shutting down; owned, so a spawned task can hold it.
    fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// One of the proxy's own threads: a single-threaded runtime running an accept loop (with a copy of
/// the listener on the thread that accepts, see `balance`); once the proxy shuts down, it waits (up
/// to the grace period) for the connections still open to finish, then drops whatever is left.
fn serve_thread(
    inner: Arc<Inner>,
    listener: Option<std::net::TcpListener>,
    index: usize,
    task: TaskGuard,
    balance: Option<Balance>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "proxy: cannot start a runtime thread");
            return;
        }
    };
    crate::shard::set(index);
    rt.block_on(async move {
        let listener = match listener.map(Listener::new).transpose() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "proxy: cannot listen on a runtime thread");
                return;
            }
        };
        let grace = inner.opts.shutdown_grace;
        accept_loop(inner.clone(), listener, task, balance).await;
        let _ = tokio::time::timeout(grace, inner.tasks.idle()).await;
    });
}

/// One of several proxy threads' share of the balancing (see `balance`).
struct Balance {
    /// This thread's index.
    me: usize,
    threads: Arc<balance::Threads>,
    /// Connections other threads accepted for this one.
    inbox: tokio::sync::mpsc::UnboundedReceiver<balance::Handed>,
}

/// The next connection another thread handed over; never, without balancing.
async fn handed(balance: &mut Option<Balance>) -> balance::Handed {
    match balance {
        Some(b) => match b.inbox.recv().await {
            Some(h) => h,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The proxy's listening socket in a thread's event loop. It gives each connection as a plain
/// non-blocking socket in no event loop: where it is served, and whether it ever needs to be in one,
/// is decided after (see `balance` and `lean`). Registering every connection at its accept would
/// cost two `epoll_ctl` calls that a new connection per request, read and answered without
/// waiting, does not need, and two more for one handed to another thread.
struct Listener(AsyncFd<mio::net::TcpListener>);

impl Listener {
    /// `listener` (non-blocking) in the current runtime's event loop.
    fn new(listener: std::net::TcpListener) -> io::Result<Listener> {
        listener.set_nonblocking(true)?;
        let listener = mio::net::TcpListener::from_std(listener);
        // SAFETY: the listener owns its descriptor, open and the same until the `AsyncFd` drops it.
        Ok(Listener(unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE)? }))
    }

    /// The next connection (`accept4`, non-blocking and close-on-exec), and who made it.
    async fn accept(&self) -> io::Result<(std::net::TcpStream, SocketAddr)> {
        let (stream, peer) = self.0.async_io(Interest::READABLE, |l| l.accept()).await?;
        Ok((stream.into(), peer))
    }
}

/// The next connection on `listener`; never, on a thread that does not accept.
async fn accepted(listener: &Option<Listener>) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Accepts client connections until shutdown (on the thread with the listener) and serves each in a
/// task of its own, per the mode: on this thread or on the one `balance` places it on.
async fn accept_loop(
    inner: Arc<Inner>,
    listener: Option<Listener>,
    _task: TaskGuard,
    mut balance: Option<Balance>,
) {
    let mut stop = pin!(inner.shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            h = handed(&mut balance) => {
                spawn_conn(&inner, h.stream, h.peer, h.limits, h.slot, h.task, Some(h.load));
                continue;
            }
            r = accepted(&listener) => match r {
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
        let limits = *inner.clients.read().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = inner.per_client.enter(peer.ip(), limits.max_connections_per_client) else {
            // Closed at once (dropped): one address cannot take every connection the proxy can hold.
            tracing::debug!(%peer, "proxy: refused a connection over the per-client bound");
            continue;
        };
        let task = inner.tasks.enter();
        let Some(b) = &balance else {
            spawn_conn(&inner, stream, peer, limits, slot, task, None);
            continue;
        };
        let lasting = inner.mode == Mode::Tcp || !first_request_closes(&stream);
        let load = b.threads.place(lasting);
        if load.thread() == b.me {
            spawn_conn(&inner, stream, peer, limits, slot, task, Some(load));
        } else {
            b.threads.hand(stream, peer, limits, slot, task, load);
        }
    }
    // Closed before the task guard is released (parameters drop in reverse order, the guard
    // first): once `shutdown` sees every task gone, no copy of the listener accepts any more.
    drop(listener);
}

/// Whether a new connection's first request asks to close the connection after it, judged from a peek
/// at its first KiB (the bytes stay for whoever serves it); a head not whole there counts as lasting.
/// The listener defers the accept until the first bytes are in, so a short head is whole here.
fn first_request_closes(stream: &std::net::TcpStream) -> bool {
    let mut buf = [0; 1024];
    stream.peek(&mut buf).is_ok_and(|n| lean::asks_to_close(&buf[..n]))
}

/// Serves one client connection in a task of its own, per the mode; `load` counts it on its thread
/// until it closes. The lean path puts the socket in the event loop itself when it has to wait;
/// hyper and TCP mode get it there at once.
fn spawn_conn(
    inner: &Arc<Inner>,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    limits: ProxyLimits,
    slot: counters::ClientSlot,
    task: TaskGuard,
    load: Option<balance::Load>,
) {
    let inner = inner.clone();
    if inner.mode == Mode::Http && inner.opts.lean {
        tokio::spawn(async move {
            let _load = load;
            lean::serve(inner, stream, peer, limits, slot, task).await
        });
        return;
    }
    let stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "proxy: cannot serve a connection");
            return;
        }
    };
    match inner.mode {
        Mode::Http => tokio::spawn(async move {
            let _load = load;
            http::serve_http_conn(inner, stream, http::Before::default(), peer, limits, slot, task).await
        }),
        Mode::Tcp => tokio::spawn(async move {
            let _load = load;
            inner.serve_tcp(stream, slot, task).await
        }),
    };
}

/// Lets the kernel hand an HTTP connection over only once its first bytes are in (as nginx's
/// `deferred` and HAProxy's `defer-accept`): a thread then wakes once for the accept and the request
/// together instead of possibly once for each, which counts with a new connection per request
/// (BENCHMARKS.md, issue 20). HTTP clients speak first, so nothing waits on it; a client that
/// connects and sends nothing is handed over after a second anyway, and its head timeout starts
/// then. Not for TCP mode, where the server may speak first.
fn defer_accept(listener: &std::net::TcpListener) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let secs: libc::c_int = 1;
        // SAFETY: a valid socket, and an int option with its size.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&secs as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "proxy: no deferred accept");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = listener;
}

/// Locks, ignoring poisoning: every lock in the proxy guards data that stays consistent at each step
/// (no lock is held across an await).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
