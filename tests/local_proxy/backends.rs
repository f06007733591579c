//! The backends the proxy is tested against, on loopback: a tiny HTTP app, a WebSocket echo, a TCP
//! echo, and an address where nothing listens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cutover::local::proxy::Backend;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A tiny hyper app: answers its id (with `status`), `/slow?ms=N` after a sleep, `/headers` with the
/// forwarding headers it saw, `/echo` with the request body. Stops gracefully.
pub(super) struct App {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    pub(super) async fn start(id: &'static str, status: u16) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            let mut stopped = stop_rx.clone();
            loop {
                let stream = tokio::select! {
                    r = listener.accept() => r.unwrap().0,
                    _ = async { let _ = stopped.wait_for(|s| *s).await; } => break,
                };
                let mut conn_stop = stop_rx.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(id, status, req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = async { let _ = conn_stop.wait_for(|s| *s).await; } => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            drop(listener);
            while conns.join_next().await.is_some() {}
        });
        App { addr, stop, task }
    }

    pub(super) fn backend(&self, machine_id: &str, version: u64) -> Backend {
        Backend { machine_id: machine_id.into(), version, addr: self.addr }
    }

    /// Graceful: stop accepting, let in-flight requests finish, close idle keep-alive connections.
    pub(super) async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap();
    }
}

async fn handle(
    id: &'static str,
    status: u16,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = match path.as_str() {
        "/slow" => {
            let ms = query.strip_prefix("ms=").and_then(|v| v.parse().ok()).unwrap_or(200);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            id.to_string()
        }
        "/headers" => {
            let h = req.headers();
            let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            format!(
                "xff={};proto={};x-hop={};keep-alive={};host={}",
                get("x-forwarded-for"),
                get("x-forwarded-proto"),
                get("x-hop"),
                get("keep-alive"),
                get("host")
            )
        }
        "/echo" => {
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            return Ok(Response::new(Full::new(bytes)));
        }
        _ => id.to_string(),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    Ok(resp)
}

/// A WebSocket echo server (tokio-tungstenite does the HTTP handshake itself).
pub(super) async fn start_ws_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    } else if msg.is_close() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A TCP echo server.
pub(super) async fn start_tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An address nothing listens on (connection refused).
pub(super) async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
