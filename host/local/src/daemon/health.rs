//! Health checks as fly.toml describes them (HTTP and TCP), run against each machine's own port.
//!
//! Until the first result a check reads `warning`; failures inside the grace period stay `warning`
//! (the app is still booting), so only failures after it count. Before the first pass the check is
//! probed every quarter second instead of every `interval`, so a machine is known ready a moment after
//! it is, not up to an interval later; after that, every `interval`, as Fly does.
//!
//! This module depends on nothing else of the daemon: results go to a [`Report`], which the fleet
//! implements.

use cutover_core::{CheckKind, CheckSpec, CheckStatus};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// How often a check is probed before it first passes.
const EAGER: Duration = Duration::from_millis(250);

/// Where one check's results go. The prober knows nothing of machines or of the fleet: the fleet
/// hands it one of these per check of a machine's run when it starts the process.
pub trait Report: Send + Sync + 'static {
    /// Whether results are still wanted: `false` once the run being checked has ended, which ends
    /// the probing.
    fn wanted(&self) -> bool;
    /// One result, the grace period already applied.
    fn result(&self, status: CheckStatus, output: String);
}

/// Probe `check` against `port` until `report` wants no more results.
pub async fn run(check: CheckSpec, port: u16, report: impl Report) {
    let started = Instant::now();
    let mut passed_once = false;
    loop {
        if !report.wanted() {
            return;
        }
        let (mut status, output) = probe(&check, port).await;
        if status != CheckStatus::Passing && started.elapsed() < check.grace_period {
            status = CheckStatus::Warning;
        }
        passed_once |= status == CheckStatus::Passing;
        report.result(status, output);
        let pause = if passed_once { check.interval } else { check.interval.min(EAGER) };
        tokio::time::sleep(pause.max(Duration::from_millis(50))).await;
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            // A check opens a fresh connection each time, as a prober should: a pooled connection
            // would hide a listener that no longer accepts.
            .pool_max_idle_per_host(0)
            .danger_accept_invalid_certs(true)
            .build()
            .expect("a plain reqwest client builds")
    })
}

/// One probe: (status, output).
pub async fn probe(check: &CheckSpec, port: u16) -> (CheckStatus, String) {
    match &check.kind {
        CheckKind::Tcp => {
            match tokio::time::timeout(check.timeout, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await
            {
                Ok(Ok(_)) => (CheckStatus::Passing, "TCP connect ok".into()),
                Ok(Err(e)) => (CheckStatus::Critical, format!("TCP connect to port {port}: {e}")),
                Err(_) => (CheckStatus::Critical, format!("TCP connect to port {port} timed out")),
            }
        }
        CheckKind::Http { method, path, headers, .. } => {
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap_or(reqwest::Method::GET);
            let path = if path.starts_with('/') { path.clone() } else { format!("/{path}") };
            let mut req =
                client().request(method, format!("http://127.0.0.1:{port}{path}")).timeout(check.timeout);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() || resp.status().is_redirection() => {
                    (CheckStatus::Passing, format!("{} {path}: {}", "HTTP", resp.status()))
                }
                Ok(resp) => (CheckStatus::Critical, format!("HTTP {path}: {}", resp.status())),
                Err(e) if e.is_timeout() => {
                    (CheckStatus::Critical, format!("HTTP {path}: no answer within {:?}", check.timeout))
                }
                Err(e) => (CheckStatus::Critical, format!("HTTP {path}: {}", root_cause(&e))),
            }
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn spec(kind: CheckKind) -> CheckSpec {
        CheckSpec {
            name: "c".into(),
            kind,
            grace_period: Duration::ZERO,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            port: None,
        }
    }

    fn http(method: &str, path: &str, headers: Vec<(String, String)>) -> CheckKind {
        CheckKind::Http {
            method: method.into(),
            path: path.into(),
            protocol: "http".into(),
            headers,
            tls_skip_verify: false,
        }
    }

    /// A one-request-at-a-time HTTP server that answers 200 only to `HEAD /ready` with `x-token: t`,
    /// and 503 otherwise.
    async fn server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let ok = req.starts_with("head /ready ") && req.contains("x-token: t");
                let status = if ok { "200 OK" } else { "503 Service Unavailable" };
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_checks_use_the_method_path_and_headers_of_fly_toml() {
        let port = server().await;
        let good = spec(http("head", "ready", vec![("x-token".into(), "t".into())]));
        assert_eq!(probe(&good, port).await.0, CheckStatus::Passing);
        let (status, output) =
            probe(&spec(http("GET", "/ready", vec![("x-token".into(), "t".into())])), port).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.contains("503"), "{output}");
        assert_eq!(probe(&spec(http("HEAD", "/ready", vec![])), port).await.0, CheckStatus::Critical);
    }

    #[tokio::test]
    async fn tcp_checks_connect_and_nothing_listening_is_critical() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(probe(&spec(CheckKind::Tcp), port).await.0, CheckStatus::Passing);
        drop(listener);
        let (status, output) = probe(&spec(CheckKind::Tcp), port).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.contains(&port.to_string()), "{output}");
        let (status, _) = probe(&spec(http("GET", "/", vec![])), port).await;
        assert_eq!(status, CheckStatus::Critical);
    }
}
