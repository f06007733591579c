//! Sticky sessions (`[cutover.local] sticky_sessions`): the `cutover-release` cookie keeps a client on
//! its release. Against real backends here (what the cookie does, what a hostile one cannot); under
//! real deploys of the example app in `deploys`.

mod deploys;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use cutover::core::StickySessions;
use cutover::local::proxy::{COOKIE_NAME, Proxy, ProxyLimits};
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::header::{COOKIE, SET_COOKIE};
use hyper::{Request, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::backends::{App, start_ws_echo};
use super::clients::{HttpClient, client, eventually, http_proxy};

/// One answer: status, the backend's id, and the `name=value` of the sticky cookie it set, if any.
async fn get(
    client: &HttpClient,
    proxy: &Proxy,
    cookie: Option<&[u8]>,
) -> (StatusCode, String, Option<String>) {
    let mut req = Request::get(format!("http://{}/", proxy.local_addr()));
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    let resp = client.request(req.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    let status = resp.status();
    let set = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{COOKIE_NAME}=")));
    if let Some(set) = &set {
        assert!(set.contains("HttpOnly") && set.contains("Path=/") && set.contains("Max-Age="), "{set}");
    }
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), set.map(|s| s.split(';').next().unwrap().to_string()))
}

/// A proxy with sticky sessions (cookie kept an hour) in front of `a` (v1) and `c` (v2, the canary)
/// at 80/20.
async fn canary_proxy(a: &App, c: &App) -> Proxy {
    let proxy = http_proxy().await;
    let sticky = Some(StickySessions { max_age: std::time::Duration::from_secs(3600) });
    proxy.set_client_limits(ProxyLimits { sticky, ..ProxyLimits::default() });
    proxy.set_backends(vec![a.backend("a", 1), c.backend("c", 2)]);
    proxy.set_weights(vec![(1, 80), (2, 20)]);
    proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_keeps_its_release_and_moves_only_forward() {
    let (a, b, c) = (App::start("a", 200).await, App::start("b", 200).await, App::start("c", 200).await);
    let proxy = canary_proxy(&a, &c).await;
    let client = client();
    // New clients are split by weight; each is pinned to what served it.
    let mut pinned: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..100 {
        let (status, id, cookie) = get(&client, &proxy, None).await;
        assert_eq!(status, StatusCode::OK);
        pinned.entry(id).or_default().push(cookie.expect("a new client gets the cookie"));
    }
    assert!(pinned.contains_key("a") && pinned.contains_key("c"), "{:?}", pinned.keys());
    for (id, cookies) in &pinned {
        for cookie in cookies.iter().take(10) {
            for _ in 0..10 {
                let (status, served, set) = get(&client, &proxy, Some(cookie.as_bytes())).await;
                assert_eq!((status, served.as_str()), (StatusCode::OK, id.as_str()), "{cookie}");
                assert_eq!(set, None, "a current cookie is not set again");
            }
        }
    }
    let on_canary = pinned["c"][0].clone();
    let on_stable = pinned["a"][0].clone();
    // The next canary step: the canary's clients keep it; stable clients are weighed again, once.
    proxy.set_weights(vec![(1, 50), (2, 50)]);
    assert_eq!(get(&client, &proxy, Some(on_canary.as_bytes())).await.1, "c");
    let (_, moved_to, renewed) = get(&client, &proxy, Some(on_stable.as_bytes())).await;
    let renewed = renewed.expect("a cookie from an earlier step is renewed");
    for _ in 0..10 {
        assert_eq!(get(&client, &proxy, Some(renewed.as_bytes())).await.1, moved_to);
    }
    // A second machine of the canary's release: its clients may go to either, never to v1.
    proxy.set_backends(vec![a.backend("a", 1), c.backend("c", 2), b.backend("b", 2)]);
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(get(&client, &proxy, Some(on_canary.as_bytes())).await.1);
    }
    assert_eq!(seen, BTreeSet::from(["b".to_string(), "c".to_string()]));
    // The switch: v1 at 0%. Its clients move to v2 (and are told so); v2's never come back.
    proxy.set_weights(vec![(1, 0), (2, 100)]);
    let (_, served, set) = get(&client, &proxy, Some(on_stable.as_bytes())).await;
    assert!(served != "a" && set.is_some(), "{served} {set:?}");
    // A rollback is the one way back: v2 at 0%, its clients go to v1.
    proxy.set_weights(vec![(1, 100), (2, 0)]);
    assert_eq!(get(&client, &proxy, Some(on_canary.as_bytes())).await.1, "a");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_batch_weighs_old_clients_again_and_never_sends_new_ones_back() {
    // No weights: split by machine count, as during a rolling deploy.
    let (a, b, c) = (App::start("a", 200).await, App::start("b", 200).await, App::start("c", 200).await);
    let proxy = http_proxy().await;
    proxy
        .set_client_limits(ProxyLimits { sticky: Some(StickySessions::default()), ..ProxyLimits::default() });
    proxy.set_backends(vec![a.backend("a", 1), b.backend("b", 1), c.backend("c", 2)]);
    let client = client();
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for _ in 0..90 {
        let (_, id, cookie) = get(&client, &proxy, None).await;
        if id == "c" { new.push(cookie.unwrap()) } else { old.push(cookie.unwrap()) }
    }
    // A batch: b now runs v2. v1 has a third of the machines, so about a third of its clients stay.
    proxy.set_backends(vec![a.backend("a", 1), b.backend("b", 2), c.backend("c", 2)]);
    let mut stayed = 0;
    for cookie in &old {
        let (_, id, renewed) = get(&client, &proxy, Some(cookie.as_bytes())).await;
        stayed += usize::from(id == "a");
        let renewed = renewed.expect("a cookie from before the batch is renewed");
        // Then it holds: a (v1) stays a, and b and c (v2) are one release.
        for _ in 0..3 {
            let again = get(&client, &proxy, Some(renewed.as_bytes())).await.1;
            assert_eq!(again == "a", id == "a", "{id} then {again}");
        }
    }
    assert!(stayed > 0 && stayed * 2 < old.len(), "{stayed} of {} old clients stayed on v1", old.len());
    for cookie in &new {
        for _ in 0..3 {
            assert_ne!(get(&client, &proxy, Some(cookie.as_bytes())).await.1, "a", "v2's clients stay on v2");
        }
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_cookies_get_plain_weighted_routing_and_no_error() {
    let (a, c) = (App::start("a", 200).await, App::start("c", 200).await);
    let proxy = canary_proxy(&a, &c).await;
    let client = client();
    let (_, _, real) = get(&client, &proxy, None).await;
    let real = real.unwrap();
    let tag = real.rsplit('.').next().unwrap().to_string();
    let hostile: Vec<Vec<u8>> = vec![
        b"cutover-release=garbage".to_vec(),
        format!("{COOKIE_NAME}=99.0.{tag}").into_bytes(), // a release that does not exist
        format!("{COOKIE_NAME}=2.1.0123456789abcdef").into_bytes(), // the canary, forged
        format!("{COOKIE_NAME}=2.1.{tag}").into_bytes(),  // another cookie's tag
        format!("{COOKIE_NAME}=18446744073709551616.1.{tag}").into_bytes(), // past u64
        format!("a=b; {COOKIE_NAME}={}", "7".repeat(20_000)).into_bytes(), // huge, under the head bound
        b"cutover-release=\xff\xfe\x80; other=\xff".to_vec(),
        b"cutover-release==;;;=;cutover-release".to_vec(),
    ];
    for cookie in &hostile {
        let mut canary = 0;
        for _ in 0..200 {
            let (status, id, set) = get(&client, &proxy, Some(cookie)).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(cookie));
            assert!(set.is_some(), "an unreadable cookie is replaced by a real one");
            canary += usize::from(id == "c");
        }
        // Weighted like a client without a cookie: about 40 of 200 on the canary.
        assert!((15..=70).contains(&canary), "{canary}: {}", String::from_utf8_lossy(cookie));
    }
    // A head past the bound is refused by the proxy (431), the cookie never read.
    let over = format!("{COOKIE_NAME}={}", "7".repeat(40_000));
    let req = Request::get(format!("http://{}/", proxy.local_addr())).header(COOKIE, over);
    let resp = client.request(req.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // The proxy still serves, and the real cookie still pins.
    let pinned = get(&client, &proxy, Some(real.as_bytes())).await.1;
    for _ in 0..20 {
        assert_eq!(get(&client, &proxy, Some(real.as_bytes())).await.1, pinned);
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_sessions_are_off_by_default() {
    let (a, c) = (App::start("a", 200).await, App::start("c", 200).await);
    let proxy = http_proxy().await;
    proxy.set_backends(vec![a.backend("a", 1), c.backend("c", 2)]);
    proxy.set_weights(vec![(1, 50), (2, 50)]);
    let client = client();
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let (status, id, set) = get(&client, &proxy, None).await;
        assert_eq!((status, set), (StatusCode::OK, None));
        seen.insert(id);
    }
    assert_eq!(seen.len(), 2, "no cookie, no pin: both releases answer one client");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_honours_the_cookie() {
    let (stable, canary) = (start_ws_echo().await, start_ws_echo().await);
    let proxy = http_proxy().await;
    let sticky = Some(StickySessions::default());
    proxy.set_client_limits(ProxyLimits { sticky, ..ProxyLimits::default() });
    let backend =
        |id: &str, version, addr| cutover::local::proxy::Backend { machine_id: id.into(), version, addr };
    proxy.set_backends(vec![backend("stable", 1, stable), backend("canary", 2, canary)]);
    proxy.set_weights(vec![(1, 90), (2, 10)]);
    let url = format!("ws://{}/ws", proxy.local_addr());
    // Open sockets until the canary takes one; its handshake's answer carries the cookie.
    let mut cookie = None;
    for _ in 0..100 {
        let (mut ws, resp) = tokio_tungstenite::connect_async(url.as_str()).await.expect("websocket");
        let set = resp
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
        let on_canary = proxy.connections("canary") == 1;
        ws.close(None).await.unwrap();
        drop(ws);
        eventually("the socket to close", || proxy.connections("canary") + proxy.connections("stable") == 0)
            .await;
        if on_canary {
            cookie = set;
            break;
        }
    }
    let cookie = cookie.expect("a tenth of the sockets go to the canary, and get the cookie");
    // Every socket opened with that cookie goes to the canary, and works.
    let mut open = Vec::new();
    for i in 0..10 {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(COOKIE, cookie.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket");
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), format!("m{i}"));
        open.push(ws);
    }
    assert_eq!((proxy.connections("canary"), proxy.connections("stable")), (10, 0));
    for mut ws in open {
        ws.close(None).await.unwrap();
    }
    proxy.shutdown().await;
}
