//! The local platform's benchmark: real processes, the real daemon and proxy, real traffic.
//!
//! 1. **Deploys under load**: `cutover demo --json --rate N --strategy S` for each built-in strategy
//!    (the example app's fly.toml in a temporary directory, its own state directory), as many runs as
//!    `CUTOVER_BENCH_RUNS`: requests, failed requests and p50/p99 from the deploy's start until every
//!    machine serves again, the deploy's duration, and the "switch traffic" phase of the strategies
//!    that have one.
//! 2. **Switch time**: on a daemon started as `cutover local serve`, one machine on v1 in rotation and
//!    one on v2 cordoned, both passing, under closed-loop load through the proxy whose every response
//!    names its machine (`x-machine-id`): `uncordon` the cordoned one, then `cordon` the other, swap,
//!    repeat. Timestamps are taken in this process around each API call and around each request.
//! 3. **Proxy overhead**: the same closed-loop load against one machine directly and through the
//!    daemon's proxy, alternating rounds of the same length and concurrency; throughput, p50/p99 and the
//!    CPU each process spent per request.
//! 4. **Against nginx and HAProxy**: three machines of the example app behind cutover's proxy, nginx
//!    (2 workers, upstream keep-alive 64) and HAProxy (2 threads, `http-reuse always`), each started
//!    by the bench from a config it writes to a temporary directory (installed from Debian when
//!    missing and the bench runs as root); `wrk --latency` rounds against one machine directly and
//!    each proxy, interleaved, at 1, 16 and 64 keep-alive connections and 16 connections that each
//!    close after one request: rates, p50/p99, each proxy's CPU per request, and cutover's ratio to
//!    the faster peer.
//!
//! The example app is built in release (`cargo build --release -p hello-cutover`) and used everywhere.
//!
//! Run: `cargo bench -p cutover --bench local`. Environment: `CUTOVER_BENCH_ONLY=deploy,switch,proxy,peers`
//! (a subset), `CUTOVER_BENCH_EXE` (another `cutover` build to run), `CUTOVER_BENCH_BASE_EXE` (section
//! 4 only: a second build's daemon and proxy as one more side of every round, to compare two builds in
//! the same rounds), `CUTOVER_BENCH_RATE` (demo's
//! req/s, 500), `CUTOVER_BENCH_RUNS` (demo runs per strategy, 3), `CUTOVER_BENCH_SWITCHES` (switch
//! repetitions, 30), `CUTOVER_BENCH_ROUNDS` (proxy rounds per side, 7),
//! `CUTOVER_BENCH_PEER_ROUNDS` and `CUTOVER_BENCH_PEER_SECS` (section 4's rounds per side and their
//! length: 3 of 3 s). Results go in BENCHMARKS.md
//! ("Local platform").

#[path = "../../../../tests/support/mod.rs"]
mod support;

mod daemon;
mod deploys;
mod load;
mod peers;
mod proxy;
mod switch;

use daemon::{machine_port, on_daemon};
use deploys::{deploys, median};
use load::{Hit, closed_loop, ms, quantile, signed_ms};
use proxy::proxy_overhead;
use switch::switch_time;

use bytes::Bytes;
use cutover::core::{CheckKind, CheckSpec, MachineState, Platform, Release};
use cutover::local::daemon::fleet::AppSpec;
use cutover::local::{LocalDaemon, LocalPlatform};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn wanted(part: &str) -> bool {
    match std::env::var("CUTOVER_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|p| p.trim() == part),
        _ => true,
    }
}

/// The example app in release, built once.
fn hello_release() -> PathBuf {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let status = Command::new(cargo)
        .args(["build", "-q", "--release", "-p", "hello-cutover", "--manifest-path"])
        .arg(support::root().join("Cargo.toml"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the example app (release) failed");
    support::root().join("target/release/hello-cutover")
}

/// (steal, total) CPU ticks of the whole machine so far (`/proc/stat`): time the hypervisor gave to
/// other guests, which no measurement here can see otherwise.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (ticks.get(7).copied().unwrap_or(0), ticks.iter().take(8).sum())
}

/// Says how much CPU time the machine lost to steal since `cpu_ticks()` gave `(steal, total)`.
fn steal_since(steal: u64, total: u64) {
    let (s1, t1) = cpu_ticks();
    let share = 100.0 * s1.saturating_sub(steal) as f64 / t1.saturating_sub(total).max(1) as f64;
    println!("(CPU steal during this section: {share:.1}% of the machine's CPU time)");
}

/// Runs `section` and says how much CPU time the machine lost to steal meanwhile.
fn noting_steal<T>(section: impl FnOnce() -> T) -> T {
    let (s0, t0) = cpu_ticks();
    let out = section();
    steal_since(s0, t0);
    out
}

fn main() {
    let hello = hello_release();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "local platform benchmark: {cores} core(s); app {}; cutover {}",
        hello.display(),
        cutover_exe().display()
    );
    if wanted("deploy") {
        noting_steal(|| deploys(&hello));
    }
    if wanted("switch") || wanted("proxy") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
        rt.block_on(on_daemon(&hello));
    }
    if wanted("peers") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
        noting_steal(|| rt.block_on(peers::peers(&hello)));
    }
}

/// The `cutover` binary run (and the daemon it starts); `CUTOVER_BENCH_EXE` runs another build, to
/// compare two versions of the proxy on the same machine.
fn cutover_exe() -> PathBuf {
    std::env::var_os("CUTOVER_BENCH_EXE")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cutover")), PathBuf::from)
}
