//! Clients that try to hold or fool the proxy, on raw sockets with hand-written bytes: slow heads,
//! oversized heads, smuggling shapes, too many connections from one address. Each is cut off or
//! refused, the app behind the proxy never sees any of them (it records every request it gets), and
//! normal traffic through the same proxy meanwhile has no failed request. No timing is asserted: a
//! slow client is shown cut off before it could finish its head, not after how long.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cutover::local::proxy::{Backend, Mode, Proxy, ProxyLimits, ProxyOptions};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::clients::client;

/// Where the hostile clients connect from: another loopback address than the normal traffic's, so
/// the per-address bound is seen to be per address.
const HOSTILE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A backend that records `METHOD path` of every request it receives.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            log.lock().unwrap().push(format!("{} {}", req.method(), req.uri().path()));
                            let _ = req.into_body().collect().await;
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { addr, seen }
    }

    /// Every request received whose path is not `/normal`.
    fn others(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().filter(|r| !r.ends_with(" /normal")).cloned().collect()
    }
}

/// Normal traffic: `GET /normal` in a loop over pooled keep-alive connections until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Traffic {
    fn start(proxy: &Proxy) -> Traffic {
        let (stop, ok) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let uri: hyper::Uri = format!("http://{}/normal", proxy.local_addr()).parse().unwrap();
        let (stop2, ok2) = (stop.clone(), ok.clone());
        let task = tokio::spawn(async move {
            let client = client();
            let mut failed = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match client.get(uri.clone()).await {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.into_body().collect().await;
                        ok2.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => failed.push(format!("status {}", resp.status())),
                    Err(e) => failed.push(format!("error {e:?}")),
                }
            }
            failed
        });
        Traffic { stop, ok, task }
    }

    /// Stops it; panics on any failed request, or if none succeeded.
    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let failed = self.task.await.unwrap();
        assert!(failed.is_empty(), "normal traffic failed meanwhile: {failed:?}");
        assert!(self.ok.load(Ordering::Relaxed) > 0, "no normal request went through");
    }
}

async fn proxy_with(limits: ProxyLimits, app: &Recorder) -> Proxy {
    let opts = ProxyOptions { clients: limits, ..Default::default() };
    let proxy = Proxy::bind_with("127.0.0.1:0".parse().unwrap(), Mode::Http, opts).await.unwrap();
    proxy.set_backends(vec![Backend { machine_id: "m".into(), version: 1, addr: app.addr }]);
    proxy
}

/// A connection to the proxy from the hostile address.
async fn hostile(proxy: &Proxy) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(HOSTILE), 0)).unwrap();
    socket.connect(proxy.local_addr()).await.unwrap()
}

/// Everything the proxy sends until it closes the connection (a reset counts as closed); panics if
/// it keeps it open for a minute, which would be the proxy being held.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the proxy kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends `request` from the hostile address and returns the whole answer, up to the close.
async fn answer(proxy: &Proxy, request: &[u8]) -> String {
    let mut s = hostile(proxy).await;
    // The proxy may close as soon as it has seen enough, before the client is done writing.
    let _ = s.write_all(request).await;
    until_closed(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_cut_off_and_never_reach_the_app() {
    let app = Recorder::start().await;
    let limits = ProxyLimits {
        header_timeout: Duration::from_secs(1),
        max_header_bytes: 4096,
        max_headers: 20,
        ..ProxyLimits::default()
    };
    let proxy = proxy_with(limits, &app).await;
    let traffic = Traffic::start(&proxy);

    // Slow headers, a byte at a time: the connection is closed before the head could be complete.
    let mut slow = hostile(&proxy).await;
    let head = b"GET /slow-head HTTP/1.1\r\nHost: app.test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (mut reader, mut writer) = slow.split();
    let mut sent = 0;
    let mut closed = String::new();
    let mut buf = [0u8; 1024];
    for byte in head.iter() {
        if writer.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        // Half a second between bytes: a head of ~90 bytes would take ~45 s.
        match tokio::time::timeout(Duration::from_millis(500), reader.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => closed.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(sent < head.len(), "the slow client finished its head: the proxy waited for all of it");
    assert!(!closed.contains("ok"), "the slow request was answered by the app: {closed}");

    // A head over the byte bound, and one with too many header lines: 431.
    let big = format!("GET /big-head HTTP/1.1\r\nHost: app.test\r\nX-Big: {}\r\n\r\n", "b".repeat(8000));
    let resp = answer(&proxy, big.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    let lines: String = (0..30).map(|i| format!("X-Many-{i}: v\r\n")).collect();
    let many = format!("GET /many-headers HTTP/1.1\r\nHost: app.test\r\n{lines}\r\n");
    let resp = answer(&proxy, many.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    assert!(resp.contains("header lines"), "the reason is given: {resp}");

    // Content-Length and Transfer-Encoding together, with a second request hidden in the body for
    // a server that would read the length: 400, and neither request reaches the app.
    let smuggle = b"POST /smuggle HTTP/1.1\r\nHost: app.test\r\nContent-Length: 44\r\n\
        Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let resp = answer(&proxy, smuggle).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("both Content-Length and Transfer-Encoding"), "{resp}");
    assert_eq!(resp.matches("HTTP/1.1").count(), 1, "one answer, then the close: {resp}");

    // The same after a good request on the same connection: the good one is answered, the bad one
    // refused.
    let mut s = hostile(&proxy).await;
    s.write_all(b"GET /normal HTTP/1.1\r\nHost: app.test\r\n\r\n").await.unwrap();
    s.write_all(b"POST /te-cl HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n")
        .await
        .unwrap();
    let resp = until_closed(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("HTTP/1.1 400"), "{resp}");

    // Other framing shapes RFC 9112 §6.3 makes ambiguous.
    for bad in [
        &b"POST /cl-cl HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
        b"POST /cl-list HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"POST /te-not-last HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST /te-twice HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /te-space HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"POST /te-10 HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /two-hosts HTTP/1.1\r\nHost: app.test\r\nHost: admin.test\r\n\r\n",
        b"GET /folded HTTP/1.1\r\nHost: app.test\r\nX-A: 1\r\n 2\r\n\r\n",
    ] {
        let resp = answer(&proxy, bad).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{}: {resp}", String::from_utf8_lossy(bad));
    }

    // A chunked body that breaks the chunk syntax ends the connection.
    let broken = b"POST /broken-chunks HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n";
    let resp = answer(&proxy, broken).await;
    assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");

    traffic.finish().await;
    let others = app.others();
    // The broken-chunks request's head is well formed, so it may have reached the app, but only
    // with the part of its body that was well formed (the app got no complete body).
    let others: Vec<_> = others.into_iter().filter(|r| r != "POST /broken-chunks").collect();
    assert!(others.is_empty(), "the app saw refused requests: {others:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let app = Recorder::start().await;
    let limits = ProxyLimits { max_connections_per_client: 8, ..ProxyLimits::default() };
    let proxy = proxy_with(limits, &app).await;
    let traffic = Traffic::start(&proxy);
    let hostile_ip = IpAddr::V4(HOSTILE);

    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(hostile(&proxy).await);
    }
    super::clients::eventually("8 connections counted", || proxy.client_connections(hostile_ip) == 8).await;

    // The ninth is closed as it is accepted: a request on it gets no answer.
    let resp = answer(&proxy, b"GET /ninth HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    assert!(resp.is_empty(), "the ninth connection was served: {resp}");
    assert_eq!(proxy.client_connections(hostile_ip), 8);

    // The held ones still work, and once one closes another may open.
    let mut first = held.remove(0);
    first.write_all(b"GET /held HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await.unwrap();
    let resp = until_closed(&mut first).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    super::clients::eventually("7 connections counted", || proxy.client_connections(hostile_ip) == 7).await;
    let resp = answer(&proxy, b"GET /again HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    traffic.finish().await;
    assert_eq!(app.others(), vec!["GET /held".to_string(), "GET /again".to_string()]);
    drop(held);
    proxy.shutdown().await;
}
