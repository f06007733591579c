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
//!
//! The example app is built in release (`cargo build --release -p hello-cutover`) and used everywhere.
//!
//! Run: `cargo bench -p cutover --bench local`. Environment: `CUTOVER_BENCH_ONLY=deploy,switch,proxy`
//! (a subset), `CUTOVER_BENCH_EXE` (another `cutover` build to run), `CUTOVER_BENCH_RATE` (demo's
//! req/s, 500), `CUTOVER_BENCH_RUNS` (demo runs per strategy, 3), `CUTOVER_BENCH_SWITCHES` (switch
//! repetitions, 30), `CUTOVER_BENCH_ROUNDS` (proxy rounds per side, 7). Results go in BENCHMARKS.md
//! ("Local platform").

#[path = "../../../tests/support/mod.rs"]
mod support;

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
}

/// The `cutover` binary run (and the daemon it starts); `CUTOVER_BENCH_EXE` runs another build, to
/// compare two versions of the proxy on the same machine.
fn cutover_exe() -> PathBuf {
    std::env::var_os("CUTOVER_BENCH_EXE")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cutover")), PathBuf::from)
}

// ---- 1. deploys under load -------------------------------------------------------------------------

const STRATEGIES: [&str; 5] = ["rolling", "bluegreen", "canary", "drain-then-destroy", "immediate"];

/// One `cutover demo` in a fresh app directory; the daemon is stopped however it ends.
fn demo(hello: &Path, strategy: &str, rate: u32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let params = if strategy == "canary" { "\n    steps = [20, 50]\n    step_pause = \"1s\"" } else { "" };
    let fly = std::fs::read_to_string(support::root().join("examples/app/fly.toml")).unwrap();
    let fly = fly
        .replace("retries = 3", &format!("retries = 3{params}"))
        .replace(
            "command = \"../../target/debug/hello-cutover\"",
            &format!("command = {:?}", hello.display().to_string()),
        )
        .replace(
            "scenarios/happy.toml",
            &support::root().join("examples/app/scenarios/happy.toml").display().to_string(),
        );
    let config = dir.path().join("fly.toml");
    std::fs::write(&config, fly).unwrap();
    let run = |args: &[&str]| {
        Command::new(cutover_exe())
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("CUTOVER_CACHE_DIR", support::cache_dir())
            .env("CUTOVER_STATE_DIR", dir.path().join("state"))
            .output()
            .expect("run cutover")
    };
    let out = run(&["demo", "--json", "--rate", &rate.to_string(), "--strategy", strategy]);
    let _ = run(&["local", "down"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{strategy}: not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn deploys(hello: &Path) {
    let rate: u32 = env_or("CUTOVER_BENCH_RATE", 500);
    let runs: usize = env_or("CUTOVER_BENCH_RUNS", 3).max(1);
    println!();
    println!(
        "== 1. deploys under load: `cutover demo --rate {rate}`, 3 machines, {runs} run(s) per strategy =="
    );
    println!("   (during the deploy = from its start until every machine serves again)");
    println!(
        "{:<20} {:>4} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "strategy", "run", "requests", "failed", "p50 ms", "p99 ms", "max ms", "deploy s", "switch ms"
    );
    let mut summary = Vec::new();
    for strategy in STRATEGIES {
        let mut rows = Vec::new();
        for run in 1..=runs {
            let r = demo(hello, strategy, rate);
            let d = &r["during_deploy"];
            let f = |k: &str| d[k].as_f64().unwrap_or(f64::NAN);
            let switch = r["phases"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p[0] == "switch traffic"))
                .and_then(|p| p[1].as_f64())
                .map(|s| s * 1000.0);
            let row = (
                d["requests"].as_u64().unwrap_or(0),
                d["failed"].as_u64().unwrap_or(0),
                f("p50_ms"),
                f("p99_ms"),
                f("max_ms"),
                r["deploy_seconds"].as_f64().unwrap_or(f64::NAN),
                switch,
            );
            println!(
                "{:<20} {:>4} {:>9} {:>7} {:>8.2} {:>8.2} {:>8.1} {:>9.2} {:>10}",
                strategy,
                run,
                row.0,
                row.1,
                row.2,
                row.3,
                row.4,
                row.5,
                row.6.map_or("-".into(), |s| format!("{s:.0}"))
            );
            if r["outcome"] != "succeeded" {
                println!("    outcome {}: {}", r["outcome"], r["error"]);
            }
            if let Some(errors) = d["errors"].as_array().filter(|e| !e.is_empty()) {
                println!("    errors: {}", Value::Array(errors.clone()));
            }
            rows.push(row);
        }
        summary.push((strategy, rows));
    }
    println!();
    println!("summary (medians over runs; failed as total / requests):");
    println!(
        "| strategy | failed / requests during deploy | p50 ms | p99 ms | deploy time s | switch traffic ms |"
    );
    println!("|---|---|---|---|---|---|");
    for (strategy, rows) in summary {
        let requests: u64 = rows.iter().map(|r| r.0).sum();
        let failed: u64 = rows.iter().map(|r| r.1).sum();
        let per_run: Vec<String> = rows.iter().map(|r| r.1.to_string()).collect();
        let mut p50: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let mut p99: Vec<f64> = rows.iter().map(|r| r.3).collect();
        let mut secs: Vec<f64> = rows.iter().map(|r| r.5).collect();
        let mut switch: Vec<f64> = rows.iter().filter_map(|r| r.6).collect();
        println!(
            "| {strategy} | {failed} / {requests} (per run: {}) | {:.2} | {:.2} | {:.1} | {} |",
            per_run.join(", "),
            median(&mut p50),
            median(&mut p99),
            median(&mut secs),
            if switch.is_empty() { "—".into() } else { format!("{:.0}", median(&mut switch)) }
        );
    }
}

// ---- closed-loop load --------------------------------------------------------------------------------

/// One request as the client saw it.
#[derive(Clone, Copy)]
struct Hit {
    sent: Instant,
    recv: Instant,
    /// Index of the answering machine in the ids given to the load (`u8::MAX`: none of them, or failed).
    machine: u8,
    ok: bool,
}

type Conn = SendRequest<Empty<Bytes>>;

async fn connect(target: SocketAddr) -> Option<Conn> {
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
async fn closed_loop(
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
                    if let Some(c) = conn.as_mut()
                        && c.ready().await.is_ok()
                    {
                        let req =
                            hyper::Request::get(path).header(hyper::header::HOST, &host).body(Empty::new());
                        if let Ok(resp) = c.send_request(req.expect("a request")).await {
                            ok = resp.status().is_success();
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

fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `b - a` in ms, signed.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if b >= a { ms(b - a) } else { -ms(a - b) }
}

// ---- the daemon (2 and 3) --------------------------------------------------------------------------

/// Stops the daemon (SIGTERM: it stops its machines first) if the bench ends early.
struct DaemonGuard(u32);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0 as libc::pid_t, libc::SIGTERM);
        }
    }
}

async fn ready(local: &LocalPlatform, id: &str) {
    local.wait_state(id, MachineState::Started, Duration::from_secs(30)).await.expect("machine started");
    local.wait_healthy(id, Duration::from_secs(30)).await.expect("machine healthy");
}

async fn on_daemon(hello: &Path) {
    let state = tempfile::tempdir().unwrap();
    let daemon = LocalDaemon::of(state.path());
    let info = daemon.ensure_running(&cutover_exe()).await.expect("start the local daemon");
    let guard = DaemonGuard(info.pid);
    let spec = AppSpec {
        command: vec![hello.display().to_string()],
        cwd: state.path().to_path_buf(),
        env: Default::default(),
        checks: vec![CheckSpec {
            name: "http".into(),
            kind: CheckKind::Http {
                method: "GET".into(),
                path: "/health".into(),
                protocol: "http".into(),
                headers: vec![],
                tls_skip_verify: false,
            },
            grace_period: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            port: None,
        }],
        port: 0,
        tcp: false,
        kill_signal: "SIGINT".into(),
        kill_timeout_ms: 5000,
    };
    let local = LocalPlatform::connect(&info.url, "bench", &spec).await.expect("register the app");
    let proxy: SocketAddr = local.proxy_addr().parse().unwrap();
    let v1 = Release { version: 1, image: "registry.fly.io/hello-cutover:v1".into() };
    let v2 = Release { version: 2, image: "registry.fly.io/hello-cutover:v2".into() };
    let blue = local.create_machine(&v1, "local", "app").await.expect("launch blue").id;
    ready(&local, &blue).await;
    // Green: a clone on v2, out of rotation (as bluegreen creates it), passing its checks.
    let green = local.clone_from(&blue, &v2, false).await.expect("clone green").id;
    ready(&local, &green).await;
    let local = Arc::new(local);

    if wanted("switch") {
        let (s0, t0) = cpu_ticks();
        switch_time(local.clone(), proxy, [blue.clone(), green.clone()]).await;
        steal_since(s0, t0);
    }
    if wanted("proxy") {
        // One machine in rotation; the other stopped so it costs nothing.
        let (serving, other) =
            if local.get(&blue).await.unwrap().is_serving() { (blue, green) } else { (green, blue) };
        local
            .stop(
                &other,
                &cutover::core::StopSpec { signal: "SIGINT".into(), timeout: Duration::from_secs(5) },
            )
            .await
            .expect("stop the other machine");
        local.wait_state(&other, MachineState::Stopped, Duration::from_secs(10)).await.expect("stopped");
        let (s0, t0) = cpu_ticks();
        proxy_overhead(&local, proxy, &serving, info.pid).await;
        steal_since(s0, t0);
    }
    daemon.stop().await.expect("stop the daemon");
    std::mem::forget(guard);
}

// ---- 2. switch time ----------------------------------------------------------------------------------

/// One switch: `green` uncordoned, then `blue` cordoned.
struct Switch {
    green: u8,
    blue: u8,
    uncordon: (Instant, Instant),
    cordon: (Instant, Instant),
}

async fn switch_time(local: Arc<LocalPlatform>, proxy: SocketAddr, ids: [String; 2]) {
    let reps: usize = env_or("CUTOVER_BENCH_SWITCHES", 30).max(1);
    let conns = 8;
    let pause = Duration::from_millis(150);
    println!();
    println!(
        "== 2. switch time: 1 machine in rotation + 1 cordoned (passing), {conns} keep-alive connections \
         closed-loop through the proxy, {reps} switches =="
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let load = tokio::spawn(closed_loop(proxy, "/", conns, Arc::new(ids.to_vec()), move || {
        stop.load(std::sync::atomic::Ordering::Relaxed)
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let (mut blue, mut green) = (0u8, 1u8);
    let mut switches = Vec::new();
    for _ in 0..reps {
        tokio::time::sleep(pause).await;
        let u0 = Instant::now();
        local.uncordon(&ids[green as usize]).await.expect("uncordon");
        let u1 = Instant::now();
        tokio::time::sleep(pause).await;
        let c0 = Instant::now();
        local.cordon(&ids[blue as usize]).await.expect("cordon");
        let c1 = Instant::now();
        switches.push(Switch { green, blue, uncordon: (u0, u1), cordon: (c0, c1) });
        std::mem::swap(&mut blue, &mut green);
    }
    tokio::time::sleep(pause).await;
    let end = Instant::now();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let hits = load.await.expect("load");

    let measured: Vec<&Hit> = hits.iter().filter(|h| h.sent >= start && h.sent < end).collect();
    let failed = measured.iter().filter(|h| !h.ok).count();
    let rate = measured.len() as f64 / (end - start).as_secs_f64();
    let mut uncordon_call = Vec::new();
    let mut in_from_call = Vec::new();
    let mut in_after_return = Vec::new();
    let mut cordon_call = Vec::new();
    let mut out_from_call = Vec::new();
    let mut out_after_return = Vec::new();
    let mut late = 0usize;
    for (i, s) in switches.iter().enumerate() {
        // This switch's requests: from its uncordon call to the next switch's.
        let from = s.uncordon.0;
        let to = switches.get(i + 1).map_or(end, |n| n.uncordon.0);
        // Green had been out of rotation since the previous switch's cordon returned.
        let green_since = if i == 0 { start } else { switches[i - 1].cordon.1 };
        let first_green = hits
            .iter()
            .filter(|h| h.machine == s.green && h.sent >= green_since && h.recv > from)
            .map(|h| h.recv)
            .min();
        // Requests answered before the next switch began (one sent just before it and answered after
        // may rightly go to this machine again: the next switch puts it back in rotation).
        let blue_hits = || hits.iter().filter(|h| h.machine == s.blue && h.sent >= from && h.recv < to);
        let last_blue = blue_hits().map(|h| h.sent).max();
        late += blue_hits().filter(|h| h.sent > s.cordon.1).count();
        uncordon_call.push(ms(s.uncordon.1 - s.uncordon.0));
        cordon_call.push(ms(s.cordon.1 - s.cordon.0));
        if let Some(t) = first_green {
            in_from_call.push(ms(t - s.uncordon.0));
            in_after_return.push(signed_ms(s.uncordon.1, t));
        }
        if let Some(t) = last_blue {
            out_from_call.push(signed_ms(s.cordon.0, t));
            out_after_return.push(signed_ms(s.cordon.1, t));
        }
    }
    println!(
        "load: {} requests in {:.1} s ({rate:.0} req/s, one every {:.0} µs on average), {failed} failed",
        measured.len(),
        (end - start).as_secs_f64(),
        1e6 / rate
    );
    let line = |what: &str, xs: &mut Vec<f64>| {
        let n = xs.len();
        xs.sort_by(f64::total_cmp);
        println!(
            "{what:<72} median {:>7.2} ms   max {:>7.2} ms   min {:>7.2} ms   (n={n})",
            quantile(xs, 0.5),
            xs.last().copied().unwrap_or(f64::NAN),
            xs.first().copied().unwrap_or(f64::NAN)
        );
    };
    line("uncordon API call (sent → answered)", &mut uncordon_call);
    line("green in: uncordon sent → first response from green received", &mut in_from_call);
    line(
        "green in: uncordon answered → first response from green received (<0: before)",
        &mut in_after_return,
    );
    line("cordon API call (sent → answered)", &mut cordon_call);
    line("blue out: cordon sent → last request blue answered was sent", &mut out_from_call);
    line(
        "blue out: cordon answered → last request blue answered was sent (<0: before)",
        &mut out_after_return,
    );
    println!("requests sent after a cordon call was answered and still answered by that machine: {late}");
}

// ---- 3. proxy overhead -------------------------------------------------------------------------------

/// CPU time (user + system) a process has used.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// The pid of the daemon's child whose environment has `PORT=port`.
fn machine_pid(daemon: u32, port: u16) -> Option<u32> {
    let want = format!("PORT={port}");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid != daemon {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env.split(|b| *b == 0).any(|kv| kv == want.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// One round's figures.
#[derive(Clone, Copy, Default)]
struct Round {
    rps: f64,
    p50: f64,
    p99: f64,
    failed: usize,
    /// CPU µs per request: load generator (this process), proxy (the daemon), app.
    cpu: [f64; 3],
}

async fn round(
    target: SocketAddr,
    path: &'static str,
    conns: usize,
    length: Duration,
    pids: [u32; 3],
) -> Round {
    let before = pids.map(cpu_time);
    let t0 = Instant::now();
    let deadline = t0 + length;
    let hits = closed_loop(target, path, conns, Arc::new(vec![]), move || Instant::now() >= deadline).await;
    let took = t0.elapsed();
    let after = pids.map(cpu_time);
    let mut lat: Vec<f64> = hits.iter().filter(|h| h.ok).map(|h| ms(h.recv - h.sent)).collect();
    lat.sort_by(f64::total_cmp);
    let n = hits.len().max(1) as f64;
    let mut cpu = [0.0; 3];
    for i in 0..3 {
        cpu[i] = (after[i] - before[i]).as_secs_f64() * 1e6 / n;
    }
    Round {
        rps: lat.len() as f64 / took.as_secs_f64(),
        p50: quantile(&lat, 0.5),
        p99: quantile(&lat, 0.99),
        failed: hits.iter().filter(|h| !h.ok).count(),
        cpu,
    }
}

async fn proxy_overhead(local: &LocalPlatform, proxy: SocketAddr, machine: &str, daemon_pid: u32) {
    let rounds: usize = env_or("CUTOVER_BENCH_ROUNDS", 7).max(1);
    let length = Duration::from_secs(1);
    // The machine's port, from its own first words.
    let log = local.logs(machine, None).await.expect("machine log");
    let port: u16 = log
        .split("listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("the machine says where it listens");
    let direct = SocketAddr::from(([127, 0, 0, 1], port));
    let app_pid = machine_pid(daemon_pid, port).unwrap_or(0);
    let pids = [std::process::id(), daemon_pid, app_pid];
    let forwarder = minimal_forwarder(direct);
    println!();
    println!(
        "== 3. proxy overhead: closed-loop keep-alive requests to one machine (release build): direct, \
         through the daemon's proxy, and through a bare hyper-util forwarder for reference; {rounds} \
         rounds of {} s per side, the order rotating ==",
        length.as_secs()
    );
    println!(
        "| request | connections | direct req/s | proxy req/s | proxy / direct \
         | bare forwarder req/s (/ direct) | direct p50 / p99 ms | proxy p50 / p99 ms \
         | added p50 / p99 ms | CPU µs/req direct (load, app) | CPU µs/req proxied (load, proxy, app) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (path, conns) in [("/", 1usize), ("/", 16), ("/", 64), ("/slow?ms=1", 16)] {
        for target in [direct, proxy, forwarder] {
            let _ = round(target, path, conns, Duration::from_millis(300), pids).await;
        }
        let (mut d, mut p, mut f) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..rounds {
            for side in 0..3 {
                match (i + side) % 3 {
                    0 => d.push(round(direct, path, conns, length, pids).await),
                    1 => p.push(round(proxy, path, conns, length, pids).await),
                    _ => f.push(round(forwarder, path, conns, length, pids).await),
                }
            }
        }
        let mut ratios: Vec<f64> = d.iter().zip(&p).map(|(d, p)| p.rps / d.rps).collect();
        let mut bare: Vec<f64> = d.iter().zip(&f).map(|(d, f)| f.rps / d.rps).collect();
        let med = |rs: &[Round], f: &dyn Fn(&Round) -> f64| {
            let mut xs: Vec<f64> = rs.iter().map(f).collect();
            median(&mut xs)
        };
        let failed: usize = d.iter().chain(&p).chain(&f).map(|r| r.failed).sum();
        let (dp50, dp99, pp50, pp99) =
            (med(&d, &|r| r.p50), med(&d, &|r| r.p99), med(&p, &|r| r.p50), med(&p, &|r| r.p99));
        println!(
            "| `GET {path}` | {conns} | {:.0} | {:.0} | **{:.0}%** ({:.0}–{:.0}%) | {:.0} ({:.0}%) \
             | {dp50:.3} / {dp99:.3} | {pp50:.3} / {pp99:.3} | {:.3} / {:.3} | {:.0}, {:.0} \
             | {:.0}, {:.0}, {:.0} |{}",
            med(&d, &|r| r.rps),
            med(&p, &|r| r.rps),
            100.0 * median(&mut ratios),
            100.0 * ratios.first().copied().unwrap_or(f64::NAN),
            100.0 * ratios.last().copied().unwrap_or(f64::NAN),
            med(&f, &|r| r.rps),
            100.0 * median(&mut bare),
            pp50 - dp50,
            pp99 - dp99,
            med(&d, &|r| r.cpu[0]),
            med(&d, &|r| r.cpu[2]),
            med(&p, &|r| r.cpu[0]),
            med(&p, &|r| r.cpu[1]),
            med(&p, &|r| r.cpu[2]),
            if failed > 0 { format!(" {failed} failed") } else { String::new() }
        );
    }
    println!("(ratio: median over rounds of proxy/direct taken round by round, min–max in brackets)");
}

/// A minimal HTTP/1 forwarder (hyper-util's pooled client, no routing, no stats, no header work) on
/// its own 2-thread runtime: the reference for what one proxy hop costs on this machine.
fn minimal_forwarder(backend: SocketAddr) -> SocketAddr {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            let client: Client<_, hyper::body::Incoming> =
                Client::builder(TokioExecutor::new()).build(connector);
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let client = client.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                            let client = client.clone();
                            async move {
                                let pq =
                                    req.uri().path_and_query().map_or("/".to_string(), |p| p.to_string());
                                *req.uri_mut() = format!("http://{backend}{pq}").parse().unwrap();
                                client.request(req).await
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}
