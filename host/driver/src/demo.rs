//! The main job: a real app deployed on the local platform while traffic flows, judged by what the
//! traffic saw.
//!
//! It launches the app (if it has no machines yet), sends steady load through the app's proxy, deploys
//! the next release with the chosen strategy, and reports the requests and failed requests during the
//! deploy, latency percentiles, and how long each phase of the strategy took.

use crate::{Deploy, DeployError, DeployReport, Target};
use cutover_config::{Config, PlatformKind};
use cutover_core::events::{Collect, Event, EventKind, EventSink, HostCall, Tee};
use cutover_core::{ErrorKind, MachineState, Platform};
use cutover_loadgen::{Load, LoadSpec, LoadSummary};
use cutover_local::LocalDaemon;
use cutover_runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;

/// How to run the main job.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Requests per second through the proxy.
    pub rate: u32,
    /// Traffic before and after the deploy, to compare against.
    pub settle: Duration,
    /// Leave the daemon and the app running afterwards.
    pub keep: bool,
}

/// What the main job measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The app's public address: its proxy on 127.0.0.1.
    pub proxy: String,
    /// The first launch, when the app had no machines.
    pub launch: Option<DeployReport>,
    /// The deploy made under load.
    pub deploy: DeployReport,
    /// Requests sent from the deploy's start until every machine served again.
    pub during: LoadSummary,
    /// Every request, from before the deploy to after it.
    pub overall: LoadSummary,
    /// (phase, seconds it lasted), in order.
    pub phases: Vec<(String, f64)>,
    /// Whether the daemon was stopped at the end.
    pub stopped: bool,
}

/// Run the main job on the local platform (`target` must be it: see `Purpose::Local`).
pub async fn run(
    config: &Config,
    target: &Target,
    runtime: &Runtime,
    sink: Arc<dyn EventSink>,
    opts: &DemoOptions,
) -> Result<DemoReport, DeployError> {
    let state = match (target.kind(), target.state()) {
        (PlatformKind::Local, Some(state)) => state,
        _ => {
            return Err(DeployError::Setup(
                "the demo runs on the local platform, in a state directory".into(),
            ));
        }
    };
    let daemon = LocalDaemon::of(state.path());
    let was_running = daemon.running().await.is_some();
    let local = target.open_local(config).await?;
    let proxy: std::net::SocketAddr = local.proxy_addr().parse().map_err(|e| DeployError::Platform {
        kind: ErrorKind::Platform,
        message: format!("the proxy address {}: {e}", local.proxy_addr()),
    })?;
    let deploy = |sink: Arc<dyn EventSink>| Deploy { config, target, runtime, sink };

    let machines =
        local.list().await.map_err(|e| DeployError::Platform { kind: e.kind, message: e.to_string() })?;
    let launch = if machines.is_empty() {
        let report = deploy(sink.clone()).run().await?;
        if report.error.is_some() {
            return Ok(stop_after(&daemon, was_running, opts, proxy, Some(report.clone()), report).await);
        }
        Some(report)
    } else {
        None
    };

    let load = Load::start(LoadSpec::new(proxy, opts.rate));
    tokio::time::sleep(opts.settle).await;
    let from = load.elapsed();
    let collect = Arc::new(Collect::default());
    let report = deploy(Arc::new(Tee(vec![sink, collect.clone()]))).run().await;
    // Users feel a deploy until the app serves from every machine again (a strategy may return
    // before that: immediate does not wait).
    let serving_by = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < serving_by {
        match local.list().await {
            Ok(ms) if ms.iter().filter(|m| m.state == MachineState::Started).all(|m| m.is_serving()) => break,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let to = load.elapsed();
    tokio::time::sleep(opts.settle).await;
    let traffic = load.stop().await;
    let report = report?;

    let mut out = stop_after(&daemon, was_running, opts, proxy, launch, report).await;
    out.during = traffic.window(from, to);
    out.overall = traffic.all();
    out.phases = phases(&collect.events());
    Ok(out)
}

async fn stop_after(
    daemon: &LocalDaemon,
    was_running: bool,
    opts: &DemoOptions,
    proxy: std::net::SocketAddr,
    launch: Option<DeployReport>,
    deploy: DeployReport,
) -> DemoReport {
    let stopped = !opts.keep && !was_running && daemon.stop().await.unwrap_or(false);
    DemoReport {
        proxy: proxy.to_string(),
        launch,
        deploy,
        during: LoadSummary::default(),
        overall: LoadSummary::default(),
        phases: vec![],
        stopped,
    }
}

/// How long each phase lasted: from its `runtime.phase` event to the next one (or the deploy's end).
pub fn phases(events: &[Event]) -> Vec<(String, f64)> {
    let mut marks: Vec<(String, u64)> = Vec::new();
    let mut end = 0;
    for e in events {
        match &e.kind {
            EventKind::HostCall { call: HostCall::Phase { name }, .. } => marks.push((name.clone(), e.at_ms)),
            EventKind::DeployFinished { .. } => end = e.at_ms,
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (i, (name, at)) in marks.iter().enumerate() {
        let next = marks.get(i + 1).map(|m| m.1).unwrap_or(end.max(*at));
        out.push((name.clone(), (next - at) as f64 / 1000.0));
    }
    out
}
