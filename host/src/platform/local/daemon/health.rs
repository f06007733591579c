//! Health checks as fly.toml describes them (HTTP and TCP), run against each machine's own port.
//!
//! Until the first result a check reads `warning`; failures inside the grace period stay `warning`
//! (the app is still booting), so only failures after it count. Before the first pass the check is
//! probed every quarter second instead of every `interval`, so a machine is known ready a moment after
//! it is, not up to an interval later; after that, every `interval`, as Fly does.

use super::fleet::Fleet;
use crate::platform::{CheckKind, CheckSpec, CheckStatus};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// How often a check is probed before it first passes.
const EAGER: Duration = Duration::from_millis(250);

/// Run one check of one machine's run until that run ends.
pub async fn run(
    fleet: Arc<Fleet>,
    app: String,
    id: String,
    run: u64,
    index: usize,
    check: CheckSpec,
    port: u16,
) {
    let started = Instant::now();
    let mut passed_once = false;
    loop {
        if !fleet.is_current(&app, &id, run) {
            return;
        }
        let (mut status, output) = probe(&check, port).await;
        if status != CheckStatus::Passing && started.elapsed() < check.grace_period {
            status = CheckStatus::Warning;
        }
        passed_once |= status == CheckStatus::Passing;
        fleet.check_result(&app, &id, run, index, status, output);
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
