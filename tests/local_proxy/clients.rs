//! Clients of the proxy: a pooled HTTP client, one kept-alive connection, and waiting for a condition.

use bytes::Bytes;
use cutover::local::proxy::{Mode, Proxy, ProxyLimits, ProxyOptions};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(super) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(super) async fn get(client: &HttpClient, proxy: &Proxy, path: &str) -> (StatusCode, String) {
    let uri = format!("http://{}{}", proxy.local_addr(), path);
    let resp = client.get(uri.parse().unwrap()).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// One HTTP/1.1 connection, reused for every request (fails if the proxy ever closes it).
pub(super) async fn keepalive_conn(proxy: &Proxy) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

pub(super) async fn send_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &str,
) -> Result<(StatusCode, String), String> {
    sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
    let req = Request::get(path).header("host", "app.test").body(Full::new(Bytes::new())).unwrap();
    let resp = sender.send_request(req).await.map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| format!("body failed: {e}"))?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec()).unwrap()))
}

pub(super) use crate::support::eventually;

pub(super) async fn http_proxy() -> Proxy {
    Proxy::bind("127.0.0.1:0".parse().unwrap(), Mode::Http).await.unwrap()
}

/// A proxy whose keep-alive connections carry `max_requests_per_connection` requests each (by
/// default a thousand; `u32::MAX` for a test that holds one connection through everything it does).
pub(super) async fn http_proxy_with_request_limit(max_requests_per_connection: u32) -> Proxy {
    let clients = ProxyLimits { max_requests_per_connection, ..ProxyLimits::default() };
    let opts = ProxyOptions { clients, ..ProxyOptions::default() };
    Proxy::bind_with("127.0.0.1:0".parse().unwrap(), Mode::Http, opts).await.unwrap()
}
