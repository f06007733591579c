//! The local proxy against real backends on loopback: real sockets, real HTTP, no timing asserts.
//! The backends it routes to are in `backends`, the clients that measure it in `clients`; clients
//! that try to hold or fool it in `hostile`.

mod backends;
mod clients;
mod forwarding;
mod hostile;
mod sticky;

use backends::{App, dead_addr, start_tcp_echo, start_ws_echo};
use clients::{client, eventually, get, http_proxy, http_proxy_with_request_limit, keepalive_conn, send_on};

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cutover::local::proxy::{Backend, Mode, Proxy, ProxyOptions};
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_follow_release_weights() {
    let (a, b, c) = (App::start("a", 200).await, App::start("b", 200).await, App::start("c", 200).await);
    let proxy = http_proxy().await;
    proxy.set_backends(vec![a.backend("a", 1), b.backend("b", 1), c.backend("c", 2)]);
    proxy.set_weights(vec![(1, 90), (2, 10)]);
    assert_eq!(proxy.weights(), vec![(1, 90), (2, 10)]);
    let client = client();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..1000 {
        let (status, id) = get(&client, &proxy, "/").await;
        assert_eq!(status, StatusCode::OK);
        *seen.entry(id).or_default() += 1;
    }
    let canary = seen.get("c").copied().unwrap_or(0);
    assert!((60..=140).contains(&canary), "v2 should get ~10%: {seen:?}");
    // Within release 1, the two machines share its 90%.
    let (na, nb) = (seen["a"], seen["b"]);
    assert!(na > 300 && nb > 300, "{seen:?}");

    // No weights: by machine count (2 of 3 machines run release 1).
    proxy.set_weights(vec![]);
    let mut v2 = 0;
    for _ in 0..300 {
        v2 += usize::from(get(&client, &proxy, "/").await.1 == "c");
    }
    assert!((60..=140).contains(&v2), "v2 should get ~1/3 of 300: {v2}");

    // A weighted release with no routable machine gives its share away.
    proxy.set_weights(vec![(1, 50), (3, 50)]);
    proxy.set_backends(vec![a.backend("a", 1), c.backend("c", 2)]);
    for _ in 0..20 {
        assert_eq!(get(&client, &proxy, "/").await.1, "a");
    }
    // No listed release routable: the unlisted ones share by machine count, so nothing is refused.
    proxy.set_backends(vec![c.backend("c", 2)]);
    for _ in 0..5 {
        assert_eq!(get(&client, &proxy, "/").await, (StatusCode::OK, "c".into()));
    }
    // A 0% release gets nothing while anything else is routable, and everything when nothing is.
    proxy.set_weights(vec![(2, 0)]);
    proxy.set_backends(vec![a.backend("a", 1), c.backend("c", 2)]);
    for _ in 0..20 {
        assert_eq!(get(&client, &proxy, "/").await.1, "a");
    }
    proxy.set_backends(vec![c.backend("c", 2)]);
    assert_eq!(get(&client, &proxy, "/").await.1, "c");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_machine_gets_no_new_requests_but_finishes_in_flight_ones() {
    let (a, b) = (App::start("a", 200).await, App::start("b", 200).await);
    let proxy = http_proxy().await;
    proxy.set_backends(vec![a.backend("a", 1)]);
    let client = client();
    let slow = {
        let (client, proxy) = (client.clone(), proxy.clone());
        tokio::spawn(async move { get(&client, &proxy, "/slow?ms=1500").await })
    };
    eventually("the slow request to be in flight on a", || proxy.connections("a") == 1).await;

    proxy.set_backends(vec![b.backend("b", 1)]); // cordon a
    for _ in 0..50 {
        assert_eq!(get(&client, &proxy, "/").await, (StatusCode::OK, "b".into()));
    }
    assert_eq!(proxy.connections("a"), 1, "a's in-flight request is still counted");
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "a".into()));
    eventually("a to drain", || proxy.connections("a") == 0).await;
    assert_eq!(proxy.connections("b"), 0);
    assert_eq!(proxy.connections("never-seen"), 0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_and_new_connections_survive_swaps_and_stops() {
    let proxy = http_proxy_with_request_limit(u32::MAX).await;
    let first = App::start("m0", 200).await;
    proxy.set_backends(vec![first.backend("m0", 0)]);

    let running = Arc::new(AtomicBool::new(true));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut load = JoinSet::new();
    // Two keep-alive clients, each on one connection for the whole test.
    for _ in 0..2 {
        let (proxy, running, failures) = (proxy.clone(), running.clone(), failures.clone());
        load.spawn(async move {
            let mut sender = keepalive_conn(&proxy).await;
            let mut ids = Vec::new();
            while running.load(Ordering::Relaxed) {
                match send_on(&mut sender, "/").await {
                    Ok((StatusCode::OK, id)) => ids.push(id),
                    other => {
                        // A dead connection fails every send at once: stop rather than spin.
                        if failures.fetch_add(1, Ordering::Relaxed) > 100 {
                            break;
                        }
                        eprintln!("keep-alive failure: {other:?}");
                    }
                }
            }
            ids
        });
    }
    // One client opening a new connection per request.
    {
        let (proxy, running, failures) = (proxy.clone(), running.clone(), failures.clone());
        load.spawn(async move {
            let mut ids = Vec::new();
            while running.load(Ordering::Relaxed) {
                let client = client();
                match tokio::time::timeout(Duration::from_secs(10), get(&client, &proxy, "/")).await {
                    Ok((StatusCode::OK, id)) => ids.push(id),
                    other => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("new-connection failure: {other:?}");
                    }
                }
            }
            ids
        });
    }

    // Five deploys: start the next machine, switch to it, then stop the old one gracefully.
    let mut current = first;
    for i in 1..=5u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id: &'static str = Box::leak(format!("m{i}").into_boxed_str());
        let next = App::start(id, 200).await;
        proxy.set_backends(vec![current.backend(&format!("m{}", i - 1), i - 1), next.backend(id, i)]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.set_backends(vec![next.backend(id, i)]);
        let old_id = format!("m{}", i - 1);
        eventually("the old machine to drain", || proxy.connections(&old_id) == 0).await;
        current.stop().await;
        current = next;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.store(false, Ordering::Relaxed);
    let mut all = Vec::new();
    while let Some(ids) = load.join_next().await {
        all.extend(ids.unwrap());
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no request may fail during the deploys");
    assert!(all.len() > 100, "the load loop made only {} requests", all.len());
    assert!(all.iter().any(|id| id == "m5"), "the last release served traffic");
    current.stop().await;
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_is_spliced_and_pinned_until_closed() {
    let ws_addr = start_ws_echo().await;
    let other = App::start("other", 200).await;
    let proxy = http_proxy().await;
    proxy.set_backends(vec![Backend { machine_id: "ws".into(), version: 1, addr: ws_addr }]);

    let (mut ws, resp) =
        tokio_tungstenite::connect_async(format!("ws://{}/socket", proxy.local_addr())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    eventually("the websocket to count on its machine", || proxy.connections("ws") == 1).await;

    // Cordon the machine: the upgraded connection stays open and pinned.
    proxy.set_backends(vec![other.backend("other", 2)]);
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("still here"));
    assert_eq!(proxy.connections("ws"), 1);
    assert_eq!(get(&client(), &proxy, "/").await.1, "other");

    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    drop(ws);
    eventually("the websocket to stop counting", || proxy.connections("ws") == 0).await;
    assert_eq!(proxy.stats(1, Duration::from_secs(60)).requests, 1);
    proxy.shutdown().await;
}

/// An upgrade that is its connection's last request (`max_requests_per_connection`) still switches:
/// the close that limit asks for is for HTTP, which the connection has left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_as_a_connections_last_request_still_switches() {
    let ws_addr = start_ws_echo().await;
    let proxy = http_proxy_with_request_limit(1).await;
    proxy.set_backends(vec![Backend { machine_id: "ws".into(), version: 1, addr: ws_addr }]);
    let (mut ws, resp) =
        tokio_tungstenite::connect_async(format!("ws://{}/socket", proxy.local_addr())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(resp.headers().get("connection").is_some_and(|v| v != "close"), "{resp:?}");
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.close(None).await.unwrap();
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_mode_echoes_and_counts_the_connection() {
    let echo = start_tcp_echo().await;
    let proxy = Proxy::bind("127.0.0.1:0".parse().unwrap(), Mode::Tcp).await.unwrap();
    let dead = dead_addr().await;
    proxy.set_backends(vec![
        Backend { machine_id: "dead".into(), version: 1, addr: dead },
        Backend { machine_id: "echo".into(), version: 1, addr: echo },
    ]);
    for round in 0..4 {
        let mut conn = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let msg = format!("ping {round}");
        conn.write_all(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0; msg.len()];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, msg.as_bytes());
        assert_eq!(proxy.connections("echo"), 1);
        drop(conn);
        eventually("the tcp connection to close", || proxy.connections("echo") == 0).await;
    }
    let s = proxy.stats(1, Duration::from_secs(60));
    assert_eq!((s.requests, s.errors), (4, 0), "refused connects were retried, not counted: {s:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_errors_and_latency_per_release() {
    let (ok, bad) = (App::start("ok", 200).await, App::start("bad", 500).await);
    let proxy = http_proxy().await;
    proxy.set_backends(vec![ok.backend("ok", 1), bad.backend("bad", 2)]);
    proxy.set_weights(vec![(1, 50), (2, 50)]);
    let client = client();
    let mut statuses = HashMap::new();
    for i in 0..100 {
        let path = if i % 10 == 0 { "/slow?ms=20" } else { "/" };
        *statuses.entry(get(&client, &proxy, path).await.0).or_insert(0) += 1;
    }
    let window = Duration::from_secs(600);
    let (v1, v2) = (proxy.stats(1, window), proxy.stats(2, window));
    assert_eq!(v1.requests + v2.requests, 100);
    assert_eq!(v1.requests as usize, statuses[&StatusCode::OK]);
    assert_eq!(v1.errors, 0);
    assert_eq!(
        (v2.errors, v2.requests as usize),
        (v2.requests, statuses[&StatusCode::INTERNAL_SERVER_ERROR])
    );
    for s in [v1, v2] {
        assert!(s.p50_ms > 0.0 && s.p99_ms >= s.p50_ms, "{s:?}");
    }
    assert_eq!(proxy.stats(9, window), Default::default());

    // A connection failure with nowhere else to go: 502, counted as an error of that release.
    let dead = dead_addr().await;
    proxy.set_backends(vec![Backend { machine_id: "dead".into(), version: 3, addr: dead }]);
    assert_eq!(get(&client, &proxy, "/").await.0, StatusCode::BAD_GATEWAY);
    let v3 = proxy.stats(3, window);
    assert_eq!((v3.requests, v3.errors), (1, 1));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_elsewhere() {
    let a = App::start("a", 200).await;
    let dead = dead_addr().await;
    let proxy = http_proxy().await;
    proxy
        .set_backends(vec![Backend { machine_id: "dead".into(), version: 1, addr: dead }, a.backend("a", 1)]);
    let client = client();
    for _ in 0..50 {
        assert_eq!(get(&client, &proxy, "/").await, (StatusCode::OK, "a".into()));
    }
    // Bodies too: a small buffered one and a large streamed (chunked) one.
    let uri: hyper::Uri = format!("http://{}/echo", proxy.local_addr()).parse().unwrap();
    for size in [10usize, 1 << 20] {
        for _ in 0..4 {
            let payload = Bytes::from(vec![b'x'; size]);
            let req = Request::post(uri.clone()).body(Full::new(payload.clone())).unwrap();
            let resp = client.request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), payload);
        }
    }
    let chunked = http_body_util::StreamBody::new(futures::stream::iter(
        (0..64).map(|_| Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(vec![b'y'; 4096])))),
    ));
    let chunked_client: Client<HttpConnector, _> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(uri.clone()).body(chunked).unwrap();
    let resp = chunked_client.request(req).await.unwrap();
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes().len(), 64 * 4096);
    let s = proxy.stats(1, Duration::from_secs(60));
    assert_eq!(s.errors, 0, "{s:?}");
    assert_eq!(proxy.connections("dead"), 0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_table_waits_then_answers_503() {
    let opts = ProxyOptions { empty_table_wait: Duration::from_millis(300), ..Default::default() };
    let proxy = Proxy::bind_with("127.0.0.1:0".parse().unwrap(), Mode::Http, opts).await.unwrap();
    let client = client();
    assert_eq!(get(&client, &proxy, "/").await.0, StatusCode::SERVICE_UNAVAILABLE);

    // A machine appearing during the wait takes the request.
    let a = App::start("a", 200).await;
    let pending = {
        let (client, proxy) = (client.clone(), proxy.clone());
        tokio::spawn(async move { get(&client, &proxy, "/").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.set_backends(vec![a.backend("a", 1)]);
    assert_eq!(pending.await.unwrap(), (StatusCode::OK, "a".into()));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_set_and_hop_by_hop_ones_stripped() {
    let a = App::start("a", 200).await;
    let proxy = http_proxy().await;
    proxy.set_backends(vec![a.backend("a", 1)]);
    let mut sender = keepalive_conn(&proxy).await;
    let req = Request::get("/headers")
        .header("host", "app.test")
        .header("x-forwarded-for", "10.0.0.1")
        .header("connection", "keep-alive, x-hop")
        .header("keep-alive", "timeout=5")
        .header("x-hop", "1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "xff=10.0.0.1, 127.0.0.1;proto=http;x-hop=;keep-alive=;host=app.test");

    // HEAD keeps the length the GET would have; the connection stays usable.
    sender.ready().await.unwrap();
    let req = Request::head("/").header("host", "app.test").body(Full::new(Bytes::new())).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.headers()["content-length"], "1");
    assert!(resp.into_body().collect().await.unwrap().to_bytes().is_empty());
    assert_eq!(send_on(&mut sender, "/").await.unwrap(), (StatusCode::OK, "a".into()));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting() {
    let proxy = http_proxy().await;
    let addr = proxy.local_addr();
    proxy.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_stopping_before_it_is_cordoned_costs_no_request() {
    // The harsher order (a crash, or a stop racing the cordon): the machine goes away while still
    // routable; refused connects and pooled connections it closes are retried on another machine.
    let proxy = http_proxy_with_request_limit(u32::MAX).await;
    let keep = App::start("keep", 200).await;
    let running = Arc::new(AtomicBool::new(true));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut load = JoinSet::new();
    for _ in 0..3 {
        let (proxy, running, failures) = (proxy.clone(), running.clone(), failures.clone());
        load.spawn(async move {
            let mut sender = keepalive_conn(&proxy).await;
            let mut n = 0usize;
            while running.load(Ordering::Relaxed) {
                match send_on(&mut sender, "/").await {
                    Ok((StatusCode::OK, _)) => n += 1,
                    other => {
                        // A dead connection fails every send at once: stop rather than spin.
                        if failures.fetch_add(1, Ordering::Relaxed) > 100 {
                            break;
                        }
                        eprintln!("failure: {other:?}");
                    }
                }
            }
            n
        });
    }
    for i in 0..5u64 {
        let id: &'static str = Box::leak(format!("doomed{i}").into_boxed_str());
        let doomed = App::start(id, 200).await;
        proxy.set_backends(vec![keep.backend("keep", 1), doomed.backend(id, 1)]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        doomed.stop().await; // still routable
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.set_backends(vec![keep.backend("keep", 1)]);
    }
    running.store(false, Ordering::Relaxed);
    let mut total = 0;
    while let Some(n) = load.join_next().await {
        total += n.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(total > 100, "only {total} requests");
    assert_eq!(proxy.stats(1, Duration::from_secs(600)).errors, 0);
    proxy.shutdown().await;
}
