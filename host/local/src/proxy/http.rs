//! HTTP mode: the client's HTTP/1.1 connection is terminated here and every request is routed on its
//! own, so a client's keep-alive connection outlives the machine that served its previous request.
//!
//! A request goes out on one of its machine's pooled connections (or a new one); an `Upgrade`
//! request goes out on a connection of its own, which on `101` carries the upgraded stream (see
//! `splice`). A failed attempt is retried on another machine when that cannot do harm: always when
//! the request never reached the machine ([`Failure::NotSent`]), and when it may have
//! ([`Failure::MaybeSent`]) only for an idempotent method with a body that can be sent again.
//!
//! hyper reads the client through the `guard` (see `framing`): a head it refused reaches hyper as a
//! stand-in, answered here with the refusal and `Connection: close`, and never routed. A request that
//! may switch protocols (`Upgrade`, `CONNECT`) and does not is answered with `Connection: close` too,
//! since the guard stops scanning after such a request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::http::uri::PathAndQuery;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

use cutover_core::StickySessions;
use cutover_core::proxy_limits::DEFAULT_MAX_HEADERS;

use super::body::{Replay, ReqBody, RespBody};
use super::counters::{ActiveGuard, ClientSlot, TaskGuard};
use super::framing::{HeadLimits, Refusal};
use super::guard::{Guarded, RefusalSlot};
use super::headers::{prepare_request_headers, strip_hop_by_hop, upgrade_protocol};
use super::pool::Checkin;
use super::splice::splice;
use super::table::Entry;
use super::{Inner, ProxyLimits, lock};

/// What the lean path did on a connection before it handed it to hyper (nothing, for one hyper
/// serves from its start).
#[derive(Default)]
pub(super) struct Before<'a> {
    /// Read from the client and not yet answered: hyper reads it again first.
    pub(super) read: &'a [u8],
    /// Requests answered: they count towards `max_requests_per_connection`.
    pub(super) served: u32,
}

/// Serves one client connection: hyper reads its requests (keep-alive included) through the guard
/// and hands each to [`Inner::handle_http`], or answers a refused one; on shutdown the connection
/// finishes its request in flight and closes. The answer to the connection's
/// `max_requests_per_connection`th request closes it. `slot` counts the connection against the
/// client's address, until its upgraded stream (if any) ends.
pub(super) async fn serve_http_conn(
    inner: Arc<Inner>,
    stream: TcpStream,
    before: Before<'_>,
    peer: SocketAddr,
    limits: ProxyLimits,
    slot: ClientSlot,
    _task: TaskGuard,
) {
    // hyper writes an answer in pieces (the lean path turns Nagle's algorithm off itself, and only
    // when it has to: `lean::Client`).
    let _ = stream.set_nodelay(true);
    let stop = inner.shutdown_signal();
    let service_inner = inner.clone();
    // Formatted once per connection, for every request's X-Forwarded-For.
    let peer = HeaderValue::try_from(peer.ip().to_string()).expect("an IP address is a header value");
    let refusal = RefusalSlot::default();
    let head_limits = HeadLimits { max_bytes: limits.max_header_bytes, max_headers: limits.max_headers };
    let io = Guarded::new(stream, head_limits, refusal.clone(), before.read);
    let slot = Arc::new(slot);
    let sticky = limits.sticky;
    // hyper calls the service once per head, in order: the count says which head a request is.
    let heads = AtomicU64::new(0);
    // Requests are counted from the lean path's first, as the limit is.
    let (served_before, max_requests) =
        (u64::from(before.served), u64::from(limits.max_requests_per_connection));
    let service = hyper::service::service_fn(move |req| {
        let index = heads.fetch_add(1, Ordering::Relaxed);
        let refused = lock(&refusal).as_ref().filter(|(i, _)| *i == index).map(|(_, r)| r.clone());
        let inner = service_inner.clone();
        let peer = peer.clone();
        let slot = slot.clone();
        async move {
            Ok::<_, Infallible>(match refused {
                Some(refusal) => refused_response(refusal),
                None => {
                    let mut resp = inner.handle_http(peer, req, slot, sticky).await;
                    // hyper closes the connection after an answer that says so; a switch of
                    // protocols has left HTTP behind.
                    let nth = served_before + index + 1;
                    if nth >= max_requests && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    resp
                }
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The guard refuses first; hyper's own bounds are set alike, as a second line.
        .max_header_size(limits.max_header_bytes);
    if limits.max_headers != DEFAULT_MAX_HEADERS {
        // hyper keeps its default count on the stack and any other on the heap: set only when needed.
        builder.max_headers(limits.max_headers);
    }
    let conn = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
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

impl Inner {
    /// `peer`: the client's IP address, as a header value; `sticky`: the connection's sticky
    /// sessions setting (see `affinity`). A request that may switch protocols and does not is
    /// answered with `Connection: close` (see the module's doc).
    async fn handle_http(
        self: Arc<Self>,
        peer: HeaderValue,
        req: Request<Incoming>,
        slot: Arc<ClientSlot>,
        sticky: Option<StickySessions>,
    ) -> Response<RespBody> {
        let may_switch = req.method() == Method::CONNECT || req.headers().contains_key(header::UPGRADE);
        let mut resp = self.route_http(peer, req, slot, sticky).await;
        if may_switch && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }

    /// Routes one request to a machine, with retries (see the module's doc); with sticky sessions, to
    /// the release its cookie pins, and the answer pins the release that served it.
    async fn route_http(
        self: Arc<Self>,
        peer: HeaderValue,
        mut req: Request<Incoming>,
        slot: Arc<ClientSlot>,
        sticky: Option<StickySessions>,
    ) -> Response<RespBody> {
        let start = Instant::now();
        if req.method() == Method::CONNECT {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported");
        }
        let upgrade = upgrade_protocol(req.headers());
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let pin = sticky.and_then(|_| self.cookie_key.read(&parts.headers));
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
            let Some((entry, guard)) = self.pick(&tried, pin).await else { break };
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
                Ok((resp, sender)) => {
                    let upgrade = client_upgrade.map(|u| (u, slot));
                    let served = entry.pin;
                    let mut resp = self.respond(resp, entry, guard, start, upgrade, sender);
                    if let Some(sticky) = sticky
                        && pin != Some(served)
                    {
                        let cookie = self.cookie_key.set_cookie(served, sticky.max_age);
                        resp.headers_mut().append(header::SET_COOKIE, cookie);
                    }
                    return resp;
                }
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
        client_upgrade: Option<(OnUpgrade, Arc<ClientSlot>)>,
        sender: Option<SendRequest<ReqBody>>,
    ) -> Response<RespBody> {
        let status = resp.status();
        let now = Instant::now();
        entry.recorder.record(now, Some(now.saturating_duration_since(start)), status.is_server_error());
        if status == StatusCode::SWITCHING_PROTOCOLS
            && let Some((client_upgrade, slot)) = client_upgrade
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
            tokio::spawn(splice(client_upgrade, backend_upgrade, guard, stop, slot, task));
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
}

/// How an attempt failed, which decides whether it may be retried.
#[derive(Clone, Copy, Debug)]
pub(super) enum Failure {
    /// The request never reached the backend (connection refused, or the pooled connection was
    /// found closed before the request went out).
    NotSent,
    /// It may have: the backend dropped the connection before answering.
    MaybeSent,
}

/// The safe methods (RFC 9110 §9.2.1): sending one twice cannot do anything twice. PUT and DELETE are
/// idempotent only if the app implements them so, and are not retried once they may have been sent.
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
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

/// The answer to a request the guard refused: its status and reason, and the connection closes.
fn refused_response(refusal: Refusal) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Full(Some(Bytes::from(refusal.reason + "\n"))));
    *resp.status_mut() = refusal.status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// An answer of the proxy's own.
fn plain(status: StatusCode, message: &'static str) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Full(Some(Bytes::from_static(message.as_bytes()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}
