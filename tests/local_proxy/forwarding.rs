//! How the proxy forwards each shape of HTTP/1.1 message, against a machine that answers scripted
//! bytes: chunked answers (extensions and trailers), answers without a body (`HEAD`, 204, 304),
//! answers that run to the close, informational answers, hop-by-hop headers, pipelined requests, a
//! machine that closes its keep-alive connections without saying so, and requests the lean path
//! hands to hyper mid-connection. Every case runs on both paths (`ProxyOptions::lean` on and off)
//! and must come out the same.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cutover::local::proxy::{Backend, Mode, Proxy, ProxyLimits, ProxyOptions};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::clients::keepalive_conn;

/// A machine answering each request with the bytes its path names (see [`script`]); it counts the
/// requests and connections it gets.
struct Scripted {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

/// The answer to `method path`, and whether the machine closes the connection after it (without
/// saying so in the answer, unless the script does).
fn script(method: &str, path: &str) -> (Vec<u8>, bool) {
    let (answer, close): (String, bool) = match path {
        "/chunked" => (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
             5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n"
                .into(),
            false,
        ),
        "/big-chunked" => {
            let chunk = format!("1000\r\n{}\r\n", "c".repeat(4096));
            (format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n", chunk.repeat(64)), false)
        }
        "/big-length" => (format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", 1 << 20, "l".repeat(1 << 20)), false),
        "/no-content" => ("HTTP/1.1 204 No Content\r\n\r\n".into(), false),
        "/not-modified" => ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n".into(), false),
        "/length" if method == "HEAD" => ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".into(), false),
        "/length" => ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".into(), false),
        "/until-close" => ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, then the close".into(), true),
        "/bye" => ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye".into(), true),
        "/early-hints" => (
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into(),
            false,
        ),
        "/hop" => (
            "HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
             X-Kept: yes\r\nContent-Length: 2\r\n\r\nok"
                .into(),
            false,
        ),
        _ => ("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndefault".into(), false),
    };
    (answer.into_bytes(), close)
}

impl Scripted {
    async fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (requests, connections) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (reqs, conns) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve_scripted(stream, reqs.clone()));
            }
        });
        Scripted { addr, requests, connections }
    }

    fn backend(&self) -> Backend {
        Backend { machine_id: "scripted".into(), version: 1, addr: self.addr }
    }
}

/// One connection of the scripted machine: reads each request (head, and a `Content-Length` or a
/// chunked body) and writes its script's answer.
async fn serve_scripted(mut stream: TcpStream, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let (len, method, path, body) = loop {
            if let Some(parsed) = parse_head(&buf)
                && let Some(body) = body_len(&buf[parsed.0..], parsed.3)
            {
                break (parsed.0, parsed.1, parsed.2, body);
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < len + body {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..len + body);
        requests.fetch_add(1, Ordering::Relaxed);
        let (answer, close) = script(&method, &path);
        if stream.write_all(&answer).await.is_err() || close {
            return;
        }
    }
}

/// A complete request head at the start of `buf`: its length, method, path and body length (`None`:
/// chunked).
fn parse_head(buf: &[u8]) -> Option<(usize, String, String, Option<usize>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap().split(' ');
    let (method, path) = (first.next().unwrap().to_owned(), first.next().unwrap().to_owned());
    let fields: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    let field = |name: &str| fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    let body = match field("transfer-encoding") {
        Some(te) if te.eq_ignore_ascii_case("chunked") => None,
        _ => Some(field("content-length").map_or(0, |v| v.parse().unwrap())),
    };
    Some((end, method, path, body))
}

/// The length of a body at the start of `rest`: `length` bytes, or chunks up to the last (zero-size,
/// no trailers) once it has arrived whole.
fn body_len(rest: &[u8], length: Option<usize>) -> Option<usize> {
    match length {
        Some(n) => Some(n),
        None if rest.starts_with(b"0\r\n\r\n") => Some(5),
        None => rest.windows(7).position(|w| w == b"\r\n0\r\n\r\n").map(|at| at + 7),
    }
}

async fn proxy_to(machine: &Scripted, lean: bool) -> Proxy {
    let opts = ProxyOptions { lean, ..ProxyOptions::default() };
    let proxy = Proxy::bind_with("127.0.0.1:0".parse().unwrap(), Mode::Http, opts).await.unwrap();
    proxy.set_backends(vec![machine.backend()]);
    proxy
}

/// Sends `method path` on a kept-alive connection: status, the headers asked for, and the body.
async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
) -> (StatusCode, hyper::HeaderMap, String) {
    sender.ready().await.expect("the proxy kept the connection open");
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "app.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
}

/// Everything the proxy sends on `stream` until it has sent `bodies` times `needle`, or closes.
async fn read_until(stream: &mut TcpStream, needle: &str, bodies: usize) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while String::from_utf8_lossy(&got).matches(needle).count() < bodies {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the proxy stopped answering");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_reaches_the_client_intact_on_one_connection() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let proxy = proxy_to(&machine, lean).await;
        let mut conn = keepalive_conn(&proxy).await;
        // Each answer is read by a strict client on one connection: an answer forwarded with the
        // wrong framing would leave bytes that break the next one.
        for round in 0..2 {
            let (status, headers, body) = send(&mut conn, "GET", "/chunked").await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "hello world"), "lean {lean}");
            assert!(headers.get("trailer").is_none(), "lean {lean}: {headers:?}");
            let (_, _, body) = send(&mut conn, "GET", "/big-chunked").await;
            assert_eq!(body, "c".repeat(64 * 4096), "lean {lean}");
            let (_, headers, body) = send(&mut conn, "GET", "/big-length").await;
            assert_eq!((headers["content-length"].to_str().unwrap(), body.len()), ("1048576", 1 << 20));
            let (status, _, body) = send(&mut conn, "GET", "/no-content").await;
            assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""), "lean {lean}");
            let (status, _, body) = send(&mut conn, "GET", "/not-modified").await;
            assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""), "lean {lean}");
            let (status, headers, body) = send(&mut conn, "HEAD", "/length").await;
            assert_eq!(
                (status, headers["content-length"].to_str().unwrap(), body.as_str()),
                (StatusCode::OK, "5", "")
            );
            let (_, _, body) = send(&mut conn, "GET", "/length").await;
            assert_eq!(body, "hello", "lean {lean}, round {round}");
            let (status, _, body) = send(&mut conn, "GET", "/early-hints").await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"), "lean {lean}");
            let (_, headers, _) = send(&mut conn, "GET", "/hop").await;
            assert_eq!(headers["x-kept"], "yes");
            for gone in ["x-secret", "keep-alive"] {
                assert!(headers.get(gone).is_none(), "lean {lean}: {gone} was forwarded: {headers:?}");
            }
        }
        // 2 rounds of 9 requests: the machine saw each once.
        assert_eq!(machine.requests.load(Ordering::Relaxed), 18, "lean {lean}");
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_running_to_the_close_arrives_whole() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let proxy = proxy_to(&machine, lean).await;
        let mut conn = keepalive_conn(&proxy).await;
        let (status, _, body) = send(&mut conn, "GET", "/until-close").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "all of it, then the close"), "lean {lean}");
        // Whether the client's connection survives it (hyper re-chunks, the lean path closes), the
        // next request on a new connection is served.
        let mut conn = keepalive_conn(&proxy).await;
        assert_eq!(send(&mut conn, "GET", "/length").await.2, "hello");
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let proxy = proxy_to(&machine, lean).await;
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let one = "GET /length HTTP/1.1\r\nHost: app.test\r\n\r\n";
        let post = "POST /posted HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody";
        client
            .write_all(format!("{one}{post}{one}GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .await
            .unwrap();
        // The chunked answer is passed on as chunks (the lean path) or re-chunked (hyper): its last
        // chunk's text ends it either way.
        let got = read_until(&mut client, " world", 1).await;
        let order: Vec<usize> = ["hello", "default", "hello", " world"]
            .iter()
            .scan(0, |from, needle| {
                let at = got[*from..].find(needle).map(|i| i + *from)?;
                *from = at + needle.len();
                Some(at)
            })
            .collect();
        assert_eq!(order.len(), 4, "lean {lean}: answers missing or out of order: {got}");
        assert_eq!(got.matches("HTTP/1.1 200").count(), 4, "lean {lean}: {got}");
        assert_eq!(machine.requests.load(Ordering::Relaxed), 4);
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_closing_its_kept_alive_connections_costs_no_request() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let proxy = proxy_to(&machine, lean).await;
        let mut conn = keepalive_conn(&proxy).await;
        // The machine closes each connection after its answer, without `Connection: close`: the
        // proxy must not lose a request to a pooled connection it finds closed.
        for _ in 0..50 {
            assert_eq!(send(&mut conn, "GET", "/bye").await.2, "bye", "lean {lean}");
            assert_eq!(send(&mut conn, "GET", "/length").await.2, "hello", "lean {lean}");
        }
        assert!(machine.connections.load(Ordering::Relaxed) >= 50, "lean {lean}");
        let stats = proxy.stats(1, Duration::from_secs(600));
        assert_eq!((stats.requests, stats.errors), (100, 0), "lean {lean}");
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_hyper_take_over_the_connection_mid_way() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let proxy = proxy_to(&machine, lean).await;
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        // A plain request, then a chunked body (hyper's), then plain ones again, in one write.
        let plain = "GET /length HTTP/1.1\r\nHost: app.test\r\n\r\n";
        let chunked = "POST /posted HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
        client.write_all(format!("{plain}{chunked}{plain}").as_bytes()).await.unwrap();
        let got = read_until(&mut client, "hello", 2).await;
        assert_eq!(got.matches("HTTP/1.1 200").count(), 3, "lean {lean}: {got}");
        assert!(got.contains("default"), "lean {lean}: {got}");
        // After the hand-over the guard still refuses what it refuses.
        client.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").await.unwrap();
        let got = read_until(&mut client, "HTTP/1.1 400", 1).await;
        assert!(got.contains("more than one Host"), "lean {lean}: {got}");
        assert_eq!(machine.requests.load(Ordering::Relaxed), 3, "lean {lean}");
        proxy.shutdown().await;
    }
}

/// Everything the proxy sends on `stream` until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got))
        .await
        .expect("the proxy kept the connection open")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

/// An answer's head (lower-cased) and body, split at the blank line.
fn head_and_body(answer: &str) -> (String, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    (head.to_ascii_lowercase(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_clients_get_answers_they_can_read_and_their_connections_kept_as_they_ask() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let proxy = proxy_to(&machine, lean).await;

        // Without keep-alive (`ab`'s way): one answer, then the close.
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        client.write_all(b"GET /length HTTP/1.0\r\n\r\n").await.unwrap();
        let got = read_to_close(&mut client).await;
        let (head, body) = head_and_body(&got);
        assert!(head.starts_with("http/1.0 200"), "lean {lean}: {got}");
        assert_eq!(body, "hello", "lean {lean}");

        // With keep-alive (`ab -k`'s way): answers say so and the connection carries the next one.
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let ask = "GET /length HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        client.write_all(ask.as_bytes()).await.unwrap();
        let first = read_until(&mut client, "hello", 1).await;
        assert!(first.to_ascii_lowercase().contains("connection: keep-alive"), "lean {lean}: {first}");
        client.write_all(ask.as_bytes()).await.unwrap();
        assert!(read_until(&mut client, "hello", 1).await.starts_with("HTTP/1.0 200"), "lean {lean}");

        // A chunked answer reaches it without its chunks, running to the close, trailers dropped.
        client.write_all(b"GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
        let got = read_to_close(&mut client).await;
        let (head, body) = head_and_body(&got);
        // (hyper says `keep-alive` on it all the same, and closes.)
        assert!(!head.contains("transfer-encoding"), "lean {lean}: {got}");
        assert_eq!(body, "hello world", "lean {lean}");

        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        client.write_all(b"GET /big-chunked HTTP/1.0\r\n\r\n").await.unwrap();
        let got = read_to_close(&mut client).await;
        assert_eq!(head_and_body(&got).1, "c".repeat(64 * 4096), "lean {lean}");

        assert_eq!(machine.requests.load(Ordering::Relaxed), 5, "lean {lean}");
        proxy.shutdown().await;
    }
}

/// A keep-alive connection carries `max_requests_per_connection` requests, counted across a hand-over
/// to hyper: the last is answered with `Connection: close` (HTTP/1.0: without `keep-alive`) and the
/// connection closes after it, as nginx's `keepalive_requests` does; the client's next connection is
/// served as the first was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_closes_after_its_last_request() {
    for lean in [true, false] {
        let machine = Scripted::start().await;
        let clients = ProxyLimits { max_requests_per_connection: 3, ..ProxyLimits::default() };
        let opts = ProxyOptions { lean, clients, ..ProxyOptions::default() };
        let proxy = Proxy::bind_with("127.0.0.1:0".parse().unwrap(), Mode::Http, opts).await.unwrap();
        proxy.set_backends(vec![machine.backend()]);
        let plain = "GET /length HTTP/1.1\r\nHost: app.test\r\n\r\n";
        let chunked = "POST /posted HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
        // All on the lean path, then one handed to hyper on the way.
        for requests in [[plain, plain, plain], [plain, chunked, plain]] {
            let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
            client.write_all(requests.concat().as_bytes()).await.unwrap();
            let got = read_to_close(&mut client).await;
            let answers: Vec<String> = got.split("HTTP/1.1 ").skip(1).map(str::to_ascii_lowercase).collect();
            assert_eq!(answers.len(), 3, "lean {lean}: {got}");
            let closes: Vec<bool> = answers.iter().map(|a| a.contains("connection: close")).collect();
            assert_eq!(closes, [false, false, true], "lean {lean}: {got}");
        }

        // HTTP/1.0 keeping its connection alive (`ab -k`): the last answer does not say `keep-alive`.
        let ask = "GET /length HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        client.write_all(ask.repeat(3).as_bytes()).await.unwrap();
        let got = read_to_close(&mut client).await;
        let answers: Vec<String> = got.split("HTTP/1.0 ").skip(1).map(str::to_ascii_lowercase).collect();
        let kept: Vec<bool> = answers.iter().map(|a| a.contains("connection: keep-alive")).collect();
        assert_eq!(kept, [true, true, false], "lean {lean}: {got}");

        assert_eq!(machine.requests.load(Ordering::Relaxed), 9, "lean {lean}");
        proxy.shutdown().await;
    }
}

/// A scripted machine behind a proxy of `threads` threads of its own (0: on the caller's runtime),
/// on the lean path or not.
async fn scripted_proxy(lean: bool, threads: usize) -> (Scripted, Proxy) {
    let machine = Scripted::start().await;
    let opts = ProxyOptions { lean, threads, ..ProxyOptions::default() };
    let proxy = Proxy::bind_with("127.0.0.1:0".parse().unwrap(), Mode::Http, opts).await.unwrap();
    proxy.set_backends(vec![machine.backend()]);
    (machine, proxy)
}

/// A burst of keep-alive connections on a proxy of two threads is spread over both as it is
/// accepted, within two of each other, and no byte is lost on the way: each connection's first write
/// holds pipelined requests, a body among them. A connection that asks to close after its first
/// request is answered and closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_spread_over_the_threads_lose_nothing_on_the_way() {
    for lean in [true, false] {
        for burst in 0..3 {
            let spread = spread_burst(lean).await;
            assert!(spread[0].abs_diff(spread[1]) <= 2, "lean {lean}, burst {burst}: {spread:?}");
        }
    }
}

/// One burst of [`connections_spread_over_the_threads_lose_nothing_on_the_way`]: the connections per
/// thread once each has been answered.
async fn spread_burst(lean: bool) -> Vec<usize> {
    const CONNECTIONS: usize = 24;
    let (machine, proxy) = scripted_proxy(lean, 2).await;
    // All open before any sends a byte.
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(TcpStream::connect(proxy.local_addr()).await.unwrap());
    }
    let mut closing = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let open = async {
        while proxy.connections_per_thread().iter().sum::<usize>() < CONNECTIONS + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), open).await.expect("every connection accepted");
    let one = "GET /length HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let post = "POST /posted HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody";
    let rounds = clients.into_iter().map(|mut client| async move {
        client.write_all(format!("{one}{post}{one}").as_bytes()).await.unwrap();
        let got = read_until(&mut client, "hello", 2).await;
        assert_eq!(got.matches("HTTP/1.1 200").count(), 3, "lean {lean}: {got}");
        assert!(got.contains("default"), "lean {lean}: {got}");
        client
    });
    let clients = futures::future::join_all(rounds).await;
    let after = proxy.connections_per_thread();
    assert_eq!(after.iter().sum::<usize>(), CONNECTIONS + 1, "lean {lean}: {after:?}");

    closing.write_all(b"GET /length HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await.unwrap();
    let got = read_to_close(&mut closing).await;
    assert!(got.ends_with("hello"), "lean {lean}: {got}");
    assert_eq!(machine.requests.load(Ordering::Relaxed), 3 * CONNECTIONS + 1, "lean {lean}");
    drop(clients);
    proxy.shutdown().await;
    after
}

/// On a proxy of two threads a connection whose first request asks to close after it (HTTP/1.1
/// `Connection: close`, HTTP/1.0 without `keep-alive`) is served on the thread that accepts, and one
/// that lasts goes to the thread serving fewer: short-lived connections keep one thread busy rather
/// than two half asleep. Each connection is held open by a body not sent yet, then answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_connections_stay_on_the_accepting_thread_and_lasting_ones_spread() {
    for lean in [true, false] {
        let (machine, proxy) = scripted_proxy(lean, 2).await;
        let head = |version: &str, connection: &str| {
            format!("POST /posted HTTP/{version}\r\nHost: app.test\r\nContent-Length: 4\r\n{connection}\r\n")
        };
        let short = [head("1.1", "Connection: close\r\n"), head("1.0", "")];
        let lasting = [head("1.1", ""), head("1.0", "Connection: keep-alive\r\n")];
        let open = async |heads: &[String], total: usize| {
            let mut conns = Vec::new();
            for head in heads.iter().cycle().take(4) {
                let mut conn = TcpStream::connect(proxy.local_addr()).await.unwrap();
                conn.write_all(head.as_bytes()).await.unwrap();
                conns.push(conn);
            }
            let all_in = async {
                while proxy.connections_per_thread().iter().sum::<usize>() < total {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(30), all_in).await.expect("every connection accepted");
            conns
        };
        let short_conns = open(&short, 4).await;
        assert_eq!(proxy.connections_per_thread(), [4, 0], "lean {lean}: short-lived ones where accepted");
        let lasting_conns = open(&lasting, 8).await;
        assert_eq!(
            proxy.connections_per_thread(),
            [4, 4],
            "lean {lean}: lasting ones where fewer are served"
        );

        for mut conn in short_conns {
            conn.write_all(b"body").await.unwrap();
            let got = read_to_close(&mut conn).await;
            assert!(got.ends_with("default"), "lean {lean}: {got}");
        }
        for mut conn in lasting_conns {
            conn.write_all(b"body").await.unwrap();
            assert!(read_until(&mut conn, "default", 1).await.contains("200 OK"), "lean {lean}");
        }
        assert_eq!(machine.requests.load(Ordering::Relaxed), 8, "lean {lean}");
        proxy.shutdown().await;
    }
}

/// A proxy on the caller's runtime (`threads: 0`) accepts and serves as one on threads of its own:
/// keep-alive requests, then one that closes, on either path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_on_the_callers_runtime_serves_as_one_on_threads_of_its_own() {
    for lean in [true, false] {
        let (machine, proxy) = scripted_proxy(lean, 0).await;
        assert!(proxy.connections_per_thread().is_empty(), "no threads of its own");
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let one = "GET /length HTTP/1.1\r\nHost: app.test\r\n\r\n";
        let last = "GET /length HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
        client.write_all(format!("{one}{one}{last}").as_bytes()).await.unwrap();
        let got = read_to_close(&mut client).await;
        assert_eq!(got.matches("HTTP/1.1 200").count(), 3, "lean {lean}: {got}");
        assert!(got.ends_with("hello"), "lean {lean}: {got}");
        assert_eq!(machine.requests.load(Ordering::Relaxed), 3, "lean {lean}");
        proxy.shutdown().await;
    }
}
