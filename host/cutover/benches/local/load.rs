//! Closed-loop HTTP load (each connection sends its next request when the last one is answered), shared
//! by the switch-time and proxy-overhead sections.

use super::*;

/// One request as the client saw it.
#[derive(Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) sent: Instant,
    pub(crate) recv: Instant,
    /// Index of the answering machine in the ids given to the load (`u8::MAX`: none of them, or failed).
    pub(crate) machine: u8,
    pub(crate) ok: bool,
}

type Conn = SendRequest<Empty<Bytes>>;

pub(crate) async fn connect(target: SocketAddr) -> Option<Conn> {
    let stream = tokio::net::TcpStream::connect(target).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(send)
}

/// `conns` keep-alive connections, each sending its next request as soon as the last is answered,
/// until `until` returns true. Every request is kept.
pub(crate) async fn closed_loop(
    target: SocketAddr,
    path: &'static str,
    conns: usize,
    ids: Arc<Vec<String>>,
    until: impl Fn() -> bool + Send + Sync + Clone + 'static,
) -> Vec<Hit> {
    let host = target.to_string();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (ids, until, host) = (ids.clone(), until.clone(), host.clone());
            tokio::spawn(async move {
                let mut hits = Vec::with_capacity(1 << 16);
                let mut conn: Option<Conn> = None;
                while !until() {
                    if conn.as_ref().is_none_or(|c| c.is_closed()) {
                        conn = connect(target).await;
                    }
                    let sent = Instant::now();
                    let mut machine = u8::MAX;
                    let mut ok = false;
                    let mut closing = false;
                    if let Some(c) = conn.as_mut()
                        && c.ready().await.is_ok()
                    {
                        let req =
                            hyper::Request::get(path).header(hyper::header::HOST, &host).body(Empty::new());
                        if let Ok(resp) = c.send_request(req.expect("a request")).await {
                            ok = resp.status().is_success();
                            // The next request goes on a new connection.
                            closing = cutover::loadgen::says_close(resp.headers());
                            if let Some(id) = resp.headers().get("x-machine-id") {
                                machine =
                                    ids.iter().position(|i| i.as_bytes() == id.as_bytes()).unwrap_or(255)
                                        as u8;
                            }
                            ok &= resp.into_body().collect().await.is_ok();
                        }
                    }
                    if !ok {
                        conn = None;
                        machine = u8::MAX;
                    } else if closing {
                        conn = None;
                    }
                    hits.push(Hit { sent, recv: Instant::now(), machine, ok });
                    if !ok {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                hits
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all.sort_by_key(|h| h.sent);
    all
}

pub(crate) fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `b - a` in ms, signed.
pub(crate) fn signed_ms(a: Instant, b: Instant) -> f64 {
    if b >= a { ms(b - a) } else { -ms(a - b) }
}
