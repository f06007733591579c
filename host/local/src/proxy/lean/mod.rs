//! HTTP mode's usual path: plain HTTP/1.1 and 1.0 requests forwarded as bytes, without hyper.
//!
//! hyper parses every request into `http` types (a `HeaderMap`, copied for each attempt), runs a task
//! per backend connection that the request's task wakes and is woken by, and rebuilds the response;
//! on a small machine that work is a good part of a request's cost (BENCHMARKS.md, issue 20). Here a
//! client connection's task does all of it itself: it parses each request head where it lies in the
//! connection's buffer (with `httparse` and the guard's own framing checks), picks the machine as
//! `http` does (weights, sticky sessions, least busy), writes the head with the headers the proxy
//! strips and adds and the body to one of the machine's pooled plain sockets, reads the response
//! head, and forwards the response by its framing. Routing, the machines' connection counts, the
//! releases' statistics and the retries are the same as on the hyper path.
//!
//! Only what it can forward exactly is forwarded here: an HTTP/1.1 or 1.0 request in origin form
//! whose body has a length within the replay buffer (read whole first, so it can be retried),
//! without `Expect`, `Upgrade` or anything the guard refuses. HTTP/1.0 is answered as hyper answers
//! it: the machine gets HTTP/1.1, the client HTTP/1.0, kept alive only when it asked and the answer
//! has a length, a chunked answer taken out of its chunks and run to the close (`ab` and other old
//! clients speak it). At the first other request the connection is
//! handed to hyper (`http`), with the bytes already read, for the rest of its life: the guard then
//! scans from that request on, so a refused head is refused exactly as before.
//!
//! A pooled socket is checked before use without a system call: tokio knows from the last event of
//! the socket whether the machine wrote anything (or closed it) since the last response, which an
//! idle keep-alive connection must not have. When the machine closes one the proxy is just sending
//! on, the request is sent again on another connection if it is idempotent (as on the hyper path,
//! for a request that may have gone out).
//!
//! With a new connection per request what a connection costs besides its request counts, so the
//! client's socket ([`Client`]) makes no system call nor segment it does not need: it enters the
//! thread's event loop only once something on it has to wait, `TCP_NODELAY` is set only before a
//! second write, and an answer after which the connection closes goes out with the close's FIN on
//! its last segment.

mod client;
mod request;
mod response;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::counters::{ActiveGuard, ClientSlot, TaskGuard};
use super::http::{Before, Failure, serve_http_conn};
use super::pool::Reusable;
use super::table::Entry;
use super::{Inner, ProxyLimits};
use client::Client;
pub(super) use request::asks_to_close;
use request::{Bounds, Head, Parsed};
use response::{Body, HeadError, READ_CHUNK, RespHead};

/// An idle keep-alive connection to a machine, as the lean path pools it.
pub(super) struct BackendConn {
    stream: TcpStream,
}

impl Reusable for BackendConn {
    /// Closed, or sent something unasked: either way not to be used. Without a system call in the
    /// usual case: tokio only reports the socket readable once an event said so after the last
    /// read came up short.
    fn is_closed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            // Readable may be stale (the last read filled the buffer exactly): ask the socket.
            Poll::Ready(Ok(())) => !self.drained(),
        }
    }
}

impl BackendConn {
    /// Whether the socket has nothing to read and is open (one system call).
    fn drained(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), as `headers` strips them.
fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP_BY_HOP: [&[u8]; 9] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    ];
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The header names a message's `Connection` headers list (RFC 9110 §7.6.1), which the proxy does
/// not pass on, and whether one said `close` or `keep-alive`; at most 8 names (a message naming more
/// is the caller's to decide about: [`Connection::full`]).
#[derive(Default)]
struct Connection<'a> {
    names: [&'a [u8]; 8],
    len: usize,
    close: bool,
    /// `keep-alive` (what keeps an HTTP/1.0 connection open).
    keep_alive: bool,
    /// A name did not fit.
    full: bool,
}

impl<'a> Connection<'a> {
    /// Reads one `Connection` header's tokens (`keep-alive` is not a name).
    fn add(&mut self, value: &'a [u8]) {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if self.len == self.names.len() {
                self.full = true;
            } else {
                self.names[self.len] = token;
                self.len += 1;
            }
        }
    }

    /// Whether the message's connection closes after it, by these headers and its version: HTTP/1.1
    /// stays open unless it says `close`, HTTP/1.0 only if it says `keep-alive`.
    fn closes(&self, http10: bool) -> bool {
        self.close || (http10 && !self.keep_alive)
    }

    /// Whether `name` is one of the names listed.
    fn names(&self, name: &[u8]) -> bool {
        self.names[..self.len].iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Serves one client connection on the lean path, then, at the first request it does not forward
/// itself, on the hyper path with what it had read. Arguments as for `http::serve_http_conn`.
pub(super) async fn serve(
    inner: Arc<Inner>,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    limits: ProxyLimits,
    slot: ClientSlot,
    task: TaskGuard,
) {
    let mut conn = Conn {
        peer: peer.ip().to_string(),
        limits,
        client: Client::new(stream),
        read: BytesMut::with_capacity(READ_CHUNK),
        request: Vec::with_capacity(1024),
        backend: BytesMut::with_capacity(READ_CHUNK),
        out: Vec::with_capacity(1024),
        served: 0,
        inner: inner.clone(),
    };
    if conn.run().await {
        let Conn { client, read, served, .. } = conn;
        match client.into_stream() {
            Ok(stream) => {
                let before = Before { read: &read, served };
                serve_http_conn(inner, stream, before, peer, limits, slot, task).await;
            }
            Err(e) => tracing::warn!(error = %e, "proxy: cannot hand a connection to the hyper path"),
        }
    }
}

/// One client connection on the lean path, with its buffers (kept across its requests).
struct Conn {
    inner: Arc<Inner>,
    client: Client,
    /// The client's address, for `X-Forwarded-For`.
    peer: String,
    limits: ProxyLimits,
    /// Read from the client and not yet forwarded.
    read: BytesMut,
    /// The current request as the machine gets it.
    request: Vec<u8>,
    /// Read from the machine.
    backend: BytesMut,
    /// The response head (and the body's first bytes) for the client.
    out: Vec<u8>,
    /// Requests answered on this connection (`ProxyLimits::max_requests_per_connection`).
    served: u32,
}

impl Conn {
    /// Serves requests until the connection ends (`false`) or one is for hyper (`true`).
    async fn run(&mut self) -> bool {
        let timeout = self.limits.header_timeout;
        let bounds = Bounds {
            max_bytes: self.limits.max_header_bytes,
            max_headers: self.limits.max_headers,
            max_body: self.inner.opts.replay_buffer,
        };
        let inner = self.inner.clone();
        let cookies = self.limits.sticky.map(|_| &inner.cookie_key);
        // The head timeout, as hyper's: from when the connection starts waiting for a head. One
        // timer per connection, moved only when it fires early, so a request costs no timer work.
        let mut waiting_since = Instant::now();
        let mut timer = pin!(tokio::time::sleep(timeout));
        let mut stop = pin!(inner.shutdown_signal());
        loop {
            let mut head = loop {
                if !self.read.is_empty() {
                    match request::parse(
                        &self.read,
                        &bounds,
                        self.peer.as_bytes(),
                        cookies,
                        &mut self.request,
                    ) {
                        Parsed::Lean(head) => break head,
                        Parsed::Hyper => return true,
                        Parsed::Partial => {}
                    }
                }
                self.read.reserve(READ_CHUNK);
                tokio::select! {
                    biased;
                    r = self.client.read_buf(&mut self.read) => match r {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    },
                    () = &mut timer => {
                        let deadline = waiting_since + timeout;
                        if Instant::now() >= deadline {
                            tracing::debug!("proxy: no request head within the header timeout");
                            return false;
                        }
                        timer.as_mut().reset(deadline.into());
                    }
                    () = &mut stop => return false,
                }
            };
            self.served += 1;
            if self.served >= self.limits.max_requests_per_connection {
                head.close = true;
            }
            // The body, whole: it is within the replay buffer.
            let total = head.len + head.body;
            while self.read.len() < total {
                self.read.reserve(total - self.read.len());
                match self.client.read_buf(&mut self.read).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
            let host_at = self.request.len();
            self.request.extend_from_slice(b"\r\n");
            self.request.extend_from_slice(&self.read[head.len..total]);
            self.read.advance(total);
            if !self.serve_request(&head, host_at).await {
                return false;
            }
            waiting_since = Instant::now();
        }
    }

    /// Forwards one request, with retries, and answers it; `false`: the connection is to close.
    /// `host_at`: where a `Host` line goes in `self.request` when the client sent none.
    async fn serve_request(&mut self, head: &Head, host_at: usize) -> bool {
        let start = Instant::now();
        let inner = self.inner.clone();
        let mut tried: Vec<Arc<Entry>> = Vec::new();
        for attempt in 0..inner.opts.max_attempts.max(1) {
            let Some((entry, guard)) = inner.pick(&tried, head.pin).await else { break };
            if attempt > 0 && tried.iter().any(|t| t.machine_id == entry.machine_id) {
                // Nothing untried left: give the machine (or the table) a moment.
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            match self.attempt(&entry, head, host_at).await {
                Ok((backend, resp)) => return self.respond(backend, resp, entry, guard, head, start).await,
                Err(failure) => {
                    drop(guard);
                    tried.push(entry);
                    let retry = match failure {
                        Failure::NotSent => true,
                        Failure::MaybeSent => head.idempotent,
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
                let msg = "bad gateway: the machine did not answer";
                self.plain(StatusCode::BAD_GATEWAY, msg, head).await
            }
            None => self.plain(StatusCode::SERVICE_UNAVAILABLE, "no machine is available", head).await,
        }
    }

    /// Sends the request to `entry` on a pooled connection or a new one and reads the response
    /// head. A pooled connection found closed before the request went out is not the machine's
    /// fault: the next one (finally a new connection) is tried, and so is one the machine closed
    /// without answering, for an idempotent request.
    async fn attempt(
        &mut self,
        entry: &Entry,
        head: &Head,
        host_at: usize,
    ) -> Result<(BackendConn, RespHead), Failure> {
        let request: Cow<'_, [u8]> = if head.no_host {
            let mut with_host = Vec::with_capacity(self.request.len() + 64);
            with_host.extend_from_slice(&self.request[..host_at]);
            with_host.extend_from_slice(b"host: ");
            with_host.extend_from_slice(entry.authority.as_str().as_bytes());
            with_host.extend_from_slice(b"\r\n");
            with_host.extend_from_slice(&self.request[host_at..]);
            Cow::Owned(with_host)
        } else {
            Cow::Borrowed(&self.request)
        };
        let idle_timeout = self.inner.opts.pool_idle_timeout;
        loop {
            let (mut conn, reused) = match entry.raw.checkout(idle_timeout) {
                // A request that must not go twice gets a connection checked by the socket itself.
                Some(conn) if !head.idempotent && !conn.drained() => continue,
                Some(conn) => (conn, true),
                None => (self.connect(entry).await?, false),
            };
            if let Err(e) = conn.stream.write_all(&request).await {
                tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: backend write failed");
                if reused {
                    continue;
                }
                return Err(Failure::NotSent);
            }
            match response::read_head(&mut conn.stream, &mut self.backend, &mut self.out, head).await {
                Ok(resp) => return Ok((conn, resp)),
                Err(HeadError::Closed) if reused && head.idempotent => {
                    tracing::debug!(machine = %entry.machine_id, "proxy: pooled connection closed");
                }
                Err(e) => {
                    tracing::debug!(machine = %entry.machine_id, error = ?e, "proxy: backend request failed");
                    return Err(Failure::MaybeSent);
                }
            }
        }
    }

    /// A new keep-alive connection to a machine.
    async fn connect(&self, entry: &Entry) -> Result<BackendConn, Failure> {
        let connect = TcpStream::connect(entry.addr);
        match tokio::time::timeout(self.inner.opts.connect_timeout, connect).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(BackendConn { stream })
            }
            Ok(Err(e)) => {
                tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: backend connect failed");
                Err(Failure::NotSent)
            }
            Err(_) => {
                tracing::debug!(machine = %entry.machine_id, "proxy: backend connect timed out");
                Err(Failure::NotSent)
            }
        }
    }

    /// Records the answer, forwards it to the client, and gives the backend connection back to the
    /// pool when it can carry another request; `false`: the client's connection is to close.
    async fn respond(
        &mut self,
        mut conn: BackendConn,
        resp: RespHead,
        entry: Arc<Entry>,
        guard: ActiveGuard,
        head: &Head,
        start: Instant,
    ) -> bool {
        let now = Instant::now();
        entry.recorder.record(now, Some(now.saturating_duration_since(start)), resp.status >= 500);
        if let Some(sticky) = self.limits.sticky
            && head.pin != Some(entry.pin)
        {
            let cookie = self.inner.cookie_key.set_cookie(entry.pin, sticky.max_age);
            self.out.extend_from_slice(b"set-cookie: ");
            self.out.extend_from_slice(cookie.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        // A body that runs to the close, or one taken out of its chunks for an HTTP/1.0 client, ends
        // with the connection.
        let close = head.close || matches!(resp.body, Body::Close | Body::Chunked(_, Some(_)));
        self.out.extend_from_slice(head.connection_header(close));
        self.out.extend_from_slice(b"\r\n");
        self.backend.advance(resp.len);
        self.client.closing = close;
        let forwarded = response::forward_body(
            &mut self.client,
            &mut conn.stream,
            &mut self.backend,
            &mut self.out,
            resp.body,
        )
        .await;
        drop(guard);
        match forwarded {
            Ok(clean) => {
                if clean && resp.keep_alive {
                    entry.raw.checkin(conn, self.inner.opts.pool_idle_timeout);
                }
                !close
            }
            Err(e) => {
                tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: response cut short");
                false
            }
        }
    }

    /// An answer of the proxy's own (as `http`'s); `false`: the connection is to close.
    async fn plain(&mut self, status: StatusCode, message: &str, head: &Head) -> bool {
        self.out.clear();
        let reason = status.canonical_reason().unwrap_or("");
        let head_line = format!(
            "{} {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n",
            head.version(),
            status.as_u16(),
            message.len()
        );
        self.out.extend_from_slice(head_line.as_bytes());
        self.out.extend_from_slice(head.connection_header(head.close));
        self.out.extend_from_slice(b"\r\n");
        if !head.head_method {
            self.out.extend_from_slice(message.as_bytes());
        }
        self.client.closing = head.close;
        self.client.write(&self.out, true).await.is_ok() && !head.close
    }
}
