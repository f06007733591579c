//! The local machines daemon: one process on loopback that runs every machine of the apps registered
//! with it as a real OS process, routes traffic to them through its proxy, and serves the Machines
//! API's shapes so the same HTTP client drives it and Fly.
//!
//! `cutover local up` starts it in the background (and `cutover deploy --platform local` on demand); it
//! writes `daemon.json` (pid, URL) into its state directory so later commands find it, and removes it
//! when it stops. On `cutover local down`, SIGTERM or SIGINT it stops every machine with its app's
//! signal and timeout before it exits; if it is killed outright, its machines die with it.
//!
//! - `api`: the HTTP API (axum), a thin layer over the fleet and the proxies.
//! - `fleet`: every machine of every app, and its process.
//! - `health`: the health check prober, which reports to the fleet.
//!
//! This module ties them together: [`Traffic`] holds each app's [`Proxy`] and takes the fleet's
//! routes, and [`serve`] runs it all until it is told to stop.

pub mod api;
pub mod auth;
pub mod fleet;
mod health;

use super::proxy::{Backend, Mode, Proxy, ProxyLimits, ProxyOptions};
use cutover_core::{OpError, ReleaseWeight, TrafficStats};
use fleet::{Fleet, Route, RouteSink};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The file, inside the daemon's directory, that tells other commands where it is.
pub const INFO_FILE: &str = "daemon.json";

/// What `daemon.json` holds, and the token read from beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The daemon's process: a `daemon.json` whose URL answers with another pid is stale.
    pub pid: u32,
    /// Base URL of the API, e.g. `http://127.0.0.1:4321`.
    pub url: String,
    /// The token every request must carry (from [`auth::TOKEN_FILE`], never from `daemon.json`).
    #[serde(skip)]
    pub token: Option<cutover_machines_api::Token>,
}

impl DaemonInfo {
    /// The daemon of the directory `dir` as its files say (not checked to answer), with its token.
    pub fn read(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(INFO_FILE)).ok()?;
        let info: DaemonInfo = serde_json::from_str(&text).ok()?;
        Some(Self { token: auth::read_token(dir), ..info })
    }
}

/// How long a request waits for a routable machine when there is none.
const EMPTY_TABLE_WAIT: Duration = Duration::from_secs(1);

/// The daemon's shared state, handed to every API handler.
pub struct Daemon {
    /// Every machine of every app.
    pub fleet: Arc<Fleet>,
    /// Every app's proxy.
    pub traffic: Arc<Traffic>,
    /// Notified by `POST /cutover/v1/shutdown`: the daemon stops every machine and exits.
    pub shutdown: Notify,
    /// The secret every request must present (see [`auth`]).
    pub token: String,
}

/// Each app's proxy. Routes arrive from the fleet on every change, before the change is acknowledged.
#[derive(Default)]
pub struct Traffic {
    proxies: Mutex<BTreeMap<String, Proxy>>,
}

impl Traffic {
    fn proxy(&self, app: &str) -> Option<Proxy> {
        self.proxies.lock().unwrap_or_else(|e| e.into_inner()).get(app).cloned()
    }

    /// Start `app`'s proxy on `port` (0: any free port) with these client bounds, or keep the one
    /// running when it already listens there (its bounds replaced).
    pub async fn ensure_proxy(
        &self,
        app: &str,
        port: u16,
        tcp: bool,
        clients: ProxyLimits,
    ) -> Result<SocketAddr, OpError> {
        if let Some(p) = self.proxy(app)
            && (port == 0 || p.local_addr().port() == port)
        {
            p.set_client_limits(clients);
            return Ok(p.local_addr());
        }
        let mode = if tcp { Mode::Tcp } else { Mode::Http };
        // A correct strategy never empties the table (green is in before blue is out), so a request
        // that finds it empty waits only briefly: long enough to ride out a restart that takes a
        // moment, short enough that an app with every machine down shows as failed requests.
        let opts = ProxyOptions { empty_table_wait: EMPTY_TABLE_WAIT, clients, ..ProxyOptions::default() };
        let proxy = Proxy::bind_with(SocketAddr::from(([127, 0, 0, 1], port)), mode, opts).await.map_err(|e| {
            OpError::new(
                cutover_core::ErrorKind::Invalid,
                format!(
                    "the proxy of {app} cannot listen on 127.0.0.1:{port}: {e}; pick another `[cutover.local] port` \
                     (0 picks a free one)"
                ),
            )
        })?;
        let addr = proxy.local_addr();
        let old = self.proxies.lock().unwrap_or_else(|e| e.into_inner()).insert(app.to_string(), proxy);
        if let Some(old) = old {
            old.shutdown().await;
        }
        Ok(addr)
    }

    /// Where `app`'s proxy listens, once it has one.
    pub fn address(&self, app: &str) -> Option<SocketAddr> {
        self.proxy(app).map(|p| p.local_addr())
    }

    /// Split `app`'s new traffic between releases (see [`Proxy::set_weights`]); nothing happens
    /// while it has no proxy.
    pub fn set_weights(&self, app: &str, weights: Vec<ReleaseWeight>) {
        if let Some(p) = self.proxy(app) {
            p.set_weights(weights.into_iter().map(|w| (w.version, w.percent)).collect());
        }
    }

    /// `app`'s weights as last set (empty: by machine count).
    pub fn weights(&self, app: &str) -> Vec<ReleaseWeight> {
        self.proxy(app)
            .map(|p| {
                p.weights().into_iter().map(|(version, percent)| ReleaseWeight { version, percent }).collect()
            })
            .unwrap_or_default()
    }

    /// A machine's active connections (see [`Proxy::connections`]); 0 while its app has no proxy.
    pub fn connections(&self, app: &str, machine: &str) -> u32 {
        self.proxy(app).map(|p| p.connections(machine)).unwrap_or(0)
    }

    /// A release's traffic over the last `window`, as its app's proxy saw it (zeros without one).
    pub fn stats(&self, app: &str, version: u64, window: Duration) -> TrafficStats {
        match self.proxy(app) {
            Some(p) => {
                let s = p.stats(version, window);
                TrafficStats { requests: s.requests, errors: s.errors, p50_ms: s.p50_ms, p99_ms: s.p99_ms }
            }
            None => TrafficStats::default(),
        }
    }
}

impl RouteSink for Traffic {
    fn set_routes(&self, app: &str, routes: Vec<Route>) {
        if let Some(p) = self.proxy(app) {
            p.set_backends(
                routes
                    .into_iter()
                    .map(|r| Backend {
                        machine_id: r.machine_id,
                        version: r.version,
                        addr: SocketAddr::from(([127, 0, 0, 1], r.port)),
                    })
                    .collect(),
            );
        }
    }
}

/// Why the daemon could not run (`cutover local serve`).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file of the daemon's directory cannot be written; `what` says which.
    #[error("{what} {}: {source}", path.display())]
    File {
        /// "creating" the directory, or "writing" the address file.
        what: &'static str,
        /// The directory or file.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The API's address cannot be bound.
    #[error("the local daemon cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Serving the API failed.
    #[error("serving the local daemon's API: {0}")]
    Serve(std::io::Error),
}

/// Run the daemon in this process until it is told to stop: serve the API on `listen`, record where in
/// `dir/daemon.json`, and stop every machine on the way out.
pub async fn serve(dir: &Path, listen: SocketAddr) -> Result<(), DaemonError> {
    let file = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::File { what, path, source }
    };
    std::fs::create_dir_all(dir).map_err(file("creating", dir))?;
    // A new token each run: one read by someone while an old daemon ran is worth nothing now.
    let token = auth::new_token();
    let token_path = dir.join(auth::TOKEN_FILE);
    auth::write_token(dir, &token).map_err(file("writing", &token_path))?;
    let traffic = Arc::new(Traffic::default());
    let fleet = Fleet::new(dir.join("logs"), traffic.clone(), dir.join(fleet::TARGETS_FILE));
    let daemon = Arc::new(Daemon { fleet: fleet.clone(), traffic, shutdown: Notify::new(), token });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Listen { addr: listen, source })?;
    let info = DaemonInfo { pid: std::process::id(), url: format!("http://{addr}"), token: None };
    let info_path = dir.join(INFO_FILE);
    // Two plain fields: serializing them cannot fail.
    let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
    cutover_core::os::write_atomically(&info_path, &json).map_err(file("writing", &info_path))?;
    tracing::info!("local daemon listening on {}", info.url);

    let d = daemon.clone();
    let stop = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = d.shutdown.notified() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    let served = axum::serve(listener, api::router(daemon.clone())).with_graceful_shutdown(stop).await;
    tracing::info!("local daemon stopping: stopping every machine");
    fleet.stop_all().await;
    let _ = std::fs::remove_file(&info_path);
    let _ = std::fs::remove_file(&token_path);
    served.map_err(DaemonError::Serve)
}
