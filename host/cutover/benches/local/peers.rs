//! Section 4, the proxy against its peers: nginx and HAProxy in front of the same three machines,
//! measured by `wrk` in the same run as cutover's proxy and a machine directly, round by round; and by
//! ApacheBench (`ab`), whose requests are HTTP/1.0, as many load generators' and old clients' are.
//!
//! The machine is shared (and so are its 2 cores: the load generator, the proxy and the app all run on
//! them), so no single rate means much; the rounds are interleaved (each round runs every side once,
//! the order rotating) and the comparison is the ratio of cutover's proxy to the faster peer (the one
//! with the higher median rate), taken round by round; the same against whichever peer was faster in
//! each round is printed beside it, a stricter bar when the two peers are close.
//!
//! Each proxy runs in a session of its own, as a proxy runs as a service of its own: cutover's daemon
//! (which starts every machine in a session of its own as well) and nginx and HAProxy alike, with
//! `wrk` in the bench's. With the kernel's autogroups (on by default) a session is a scheduling group,
//! so every side gets the same split of the two cores (before, nginx and HAProxy shared the bench's
//! group with `wrk` while cutover's proxy shared one with the machines: BENCHMARKS.md, issue 20).

use super::*;
use std::process::{Child, Stdio};

/// One side of the comparison: what the load generator is pointed at, and whose CPU time is counted.
struct Side {
    name: &'static str,
    addr: SocketAddr,
    /// The proxy's processes (none for direct): their user + system time is the proxy's CPU.
    pids: Vec<u32>,
}

/// A peer proxy started by the bench; stopped (SIGTERM, then waited for) when dropped.
struct Peer {
    child: Child,
    /// Its config and logs; removed when dropped.
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// One round's figures (`wrk`'s or `ab`'s).
#[derive(Clone, Copy, Default)]
struct WrkRound {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Socket errors and non-2xx/3xx answers.
    failed: u64,
    /// The proxy's CPU µs per request (NaN for direct).
    cpu_us: f64,
    /// The proxy's threads' sleeps (voluntary context switches) per request (NaN for direct): how
    /// often it ran out of work, each sleep a wake-up someone else pays for.
    sleeps: f64,
}

/// How the load connects: `conns` keep-alive connections, or `conns` connections each closed after
/// one request; sent by `wrk` (HTTP/1.1), or by `ab` (HTTP/1.0).
#[derive(Clone, Copy)]
struct Load {
    conns: u32,
    close: bool,
    ab: bool,
}

impl Load {
    fn label(self) -> String {
        match (self.ab, self.close) {
            (false, true) => format!("{} (new connection per request)", self.conns),
            (false, false) => self.conns.to_string(),
            (true, true) => format!("{}, HTTP/1.0 (`ab`, new connection per request)", self.conns),
            (true, false) => format!("{}, HTTP/1.0 (`ab -k`, keep-alive)", self.conns),
        }
    }
}

/// The tools the section runs, and Debian's packages of them.
const TOOLS: [(&str, &str); 4] =
    [("nginx", "nginx-light"), ("haproxy", "haproxy"), ("wrk", "wrk"), ("ab", "apache2-utils")];

fn found(tool: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// nginx, HAProxy, wrk and ab from Debian, installed when missing and the bench runs as root. `Err`:
/// why the section cannot run.
fn ensure_tools() -> Result<(), String> {
    let missing: Vec<&str> = TOOLS.into_iter().filter(|(t, _)| !found(t)).map(|(t, _)| t).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = TOOLS.into_iter().map(|(_, p)| p).collect();
    let command = format!("apt-get install -y {}", packages.join(" "));
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "{} not installed and the bench is not root; run `{command}` as root",
            missing.join(", ")
        ));
    }
    println!("installing {} from Debian ({command})", missing.join(", "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        if !install() {
            return Err(format!("`{command}` failed"));
        }
    }
    match TOOLS.into_iter().find(|(t, _)| !found(t)) {
        Some((t, _)) => Err(format!("{t} is still missing after {command}")),
        None => Ok(()),
    }
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on `addr`.
fn wait_listening(addr: SocketAddr, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within 10 s; its log ({}):\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx as the issue configures it: 2 workers, an upstream keep-alive pool of 64, least connections
/// (as cutover's proxy picks), `X-Forwarded-For` added (as cutover's proxy does). Everything it
/// writes stays in its own temporary directory.
fn start_nginx(backends: &[u16]) -> (Peer, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = free_port();
    let servers: String = backends.iter().map(|p| format!("    server 127.0.0.1:{p};\n")).collect();
    let conf = format!(
        "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 upstream app {{\n    least_conn;\n{servers}    keepalive 64;\n  }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
         \x20     proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
         \x20     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let log = dir.path().join("error.log");
    let child = own_session(&mut Command::new(if found("nginx") { "nginx" } else { "/usr/sbin/nginx" }))
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("start nginx");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let peer = Peer { child, _dir: dir };
    wait_listening(addr, "nginx", &log);
    (peer, addr)
}

/// HAProxy as the issue configures it: 2 threads, `http-reuse always`, least connections,
/// `X-Forwarded-For` added.
fn start_haproxy(backends: &[u16]) -> (Peer, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let servers: String =
        backends.iter().enumerate().map(|(i, p)| format!("  server m{i} 127.0.0.1:{p}\n")).collect();
    let conf = format!(
        "global\n  nbthread 2\n  maxconn 4096\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
         \x20 http-reuse always\n  option forwardfor\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend app\n\
         backend app\n  balance leastconn\n{servers}"
    );
    let conf_path = dir.path().join("haproxy.cfg");
    std::fs::write(&conf_path, conf).unwrap();
    let log = dir.path().join("stderr.log");
    let child =
        own_session(&mut Command::new(if found("haproxy") { "haproxy" } else { "/usr/sbin/haproxy" }))
            .arg("-db")
            .arg("-f")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start haproxy");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let peer = Peer { child, _dir: dir };
    wait_listening(addr, "haproxy", &log);
    (peer, addr)
}

/// `pid` and its children (nginx's workers).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let ppid =
            stat.rsplit(')').next().and_then(|s| s.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// A wrk latency figure (`870.00us`, `1.23ms`, `2.00s`) in ms.
fn wrk_ms(v: &str) -> f64 {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        (v, f64::NAN)
    };
    num.parse::<f64>().map_or(f64::NAN, |n| n * scale)
}

/// One round of `load` against `side`, by the load's tool.
fn round(side: &Side, load: Load, secs: u32) -> WrkRound {
    if load.ab { ab_round(side, load, secs) } else { wrk_round(side, load, secs) }
}

/// The proxy's CPU time and its threads' sleeps so far.
fn proxy_counters(side: &Side) -> (Duration, u64) {
    (side.pids.iter().map(|p| proxy::cpu_time(*p)).sum(), side.pids.iter().map(|p| sleeps(*p)).sum())
}

/// Runs one round's load generator (`tool`, as `cmd`) against `side`; `line` reads each line of its
/// output (split into words) into the round, and returns the requests it counted when the line says.
fn measure(
    side: &Side,
    tool: &str,
    mut cmd: Command,
    line: impl Fn(&[&str], &mut WrkRound) -> Option<u64>,
) -> WrkRound {
    cmd.arg(format!("http://{}/", side.addr));
    let before = proxy_counters(side);
    let out = cmd.output().unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{tool} failed against {}: {text}{}",
        side.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = WrkRound { cpu_us: f64::NAN, sleeps: f64::NAN, ..WrkRound::default() };
    let mut requests = 0u64;
    for l in text.lines() {
        let words: Vec<&str> = l.split_whitespace().collect();
        if let Some(n) = line(&words, &mut r) {
            requests = n;
        }
    }
    assert!(requests > 0 && r.rps > 0.0, "{tool} served nothing against {}:\n{text}", side.name);
    if !side.pids.is_empty() {
        let (cpu, slept) = proxy_counters(side);
        r.cpu_us = (cpu - before.0).as_secs_f64() * 1e6 / requests as f64;
        r.sleeps = slept.saturating_sub(before.1) as f64 / requests as f64;
    }
    r
}

/// One `ab` round against `side` (HTTP/1.0; `-k` for keep-alive). Its latency percentiles are whole
/// milliseconds.
fn ab_round(side: &Side, load: Load, secs: u32) -> WrkRound {
    let mut cmd = Command::new("ab");
    // `-t` sets a cap of 50,000 requests unless a later `-n` raises it.
    cmd.args(["-q", "-c", &load.conns.to_string(), "-t", &secs.to_string(), "-n", "100000000"]);
    if !load.close {
        cmd.arg("-k");
    }
    measure(side, "ab", cmd, |words, r| {
        match words {
            ["Complete", "requests:", n] => return n.parse().ok(),
            ["Failed", "requests:", n, ..] | ["Non-2xx", "responses:", n] => {
                r.failed += n.parse::<u64>().unwrap_or(0)
            }
            ["Requests", "per", "second:", v, ..] => r.rps = v.parse().unwrap_or(f64::NAN),
            ["50%", v] => r.p50_ms = v.parse().unwrap_or(f64::NAN),
            ["99%", v] => r.p99_ms = v.parse().unwrap_or(f64::NAN),
            _ => {}
        }
        None
    })
}

/// One `wrk` round against `side`: its output parsed, the proxy's CPU time over the round.
fn wrk_round(side: &Side, load: Load, secs: u32) -> WrkRound {
    let threads = load.conns.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        &threads.to_string(),
        "-c",
        &load.conns.to_string(),
        "-d",
        &format!("{secs}s"),
        "--latency",
    ]);
    if load.close {
        cmd.args(["-H", "Connection: close"]);
    }
    measure(side, "wrk", cmd, |words, r| {
        match words {
            ["Requests/sec:", v] => r.rps = v.parse().unwrap_or(f64::NAN),
            ["50%", v] => r.p50_ms = wrk_ms(v),
            ["99%", v] => r.p99_ms = wrk_ms(v),
            [n, "requests", "in", ..] => return n.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => r.failed += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                r.failed +=
                    rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>()
            }
            _ => {}
        }
        None
    })
}

/// Voluntary context switches of all of `pid`'s threads so far.
fn sleeps(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")?.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Starts `cmd` in a session of its own (see the module's note on autogroups).
fn own_session(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn med(rs: &[WrkRound], f: impl Fn(&WrkRound) -> f64) -> f64 {
    let mut xs: Vec<f64> = rs.iter().map(f).collect();
    median(&mut xs)
}

/// A daemon of one `cutover` build with three machines of the example app.
struct Fleet {
    daemon: LocalDaemon,
    guard: daemon::DaemonGuard,
    pid: u32,
    proxy: SocketAddr,
    ports: Vec<u16>,
    /// Its state directory; removed when dropped.
    _state: tempfile::TempDir,
}

impl Fleet {
    async fn start(exe: &Path, hello: &Path) -> Fleet {
        let state = tempfile::tempdir().unwrap();
        let daemon = LocalDaemon::of(state.path());
        let info = daemon.ensure_running(exe).await.expect("start the local daemon");
        let guard = daemon::DaemonGuard(info.pid);
        let local = LocalPlatform::connect(&info, "bench", &daemon::app_spec(hello, state.path()))
            .await
            .expect("register the app");
        let v1 = Release { version: 1, image: "registry.fly.io/hello-cutover:v1".into() };
        let mut ports = Vec::new();
        for _ in 0..3 {
            let id = local.create_machine(&v1, "local", "app").await.expect("launch a machine").id;
            daemon::ready(&local, &id).await;
            ports.push(daemon::machine_port(&local, &id).await);
        }
        let proxy = local.proxy_addr().parse().unwrap();
        Fleet { daemon, guard, pid: info.pid, proxy, ports, _state: state }
    }

    async fn stop(self) {
        self.daemon.stop().await.expect("stop the daemon");
        std::mem::forget(self.guard);
    }
}

/// Section 4: three machines of the example app behind cutover's proxy, nginx and HAProxy; with
/// `CUTOVER_BENCH_BASE_EXE`, also another build's daemon and proxy (with three machines of its own),
/// as a fifth side of every round, so two builds are compared in the same rounds.
pub(crate) async fn peers(hello: &Path) {
    if let Err(why) = ensure_tools() {
        assert!(std::env::var("CI").map_or(true, |v| v != "1"), "the peers section cannot run: {why}");
        println!("\n== 4. proxy against nginx and HAProxy: skipped: {why} ==");
        return;
    }
    let fleet = Fleet::start(&cutover_exe(), hello).await;
    let base_exe = std::env::var_os("CUTOVER_BENCH_BASE_EXE").map(PathBuf::from);
    let base = match &base_exe {
        Some(exe) => Some(Fleet::start(exe, hello).await),
        None => None,
    };
    let ports = &fleet.ports;
    let (nginx, nginx_addr) = start_nginx(ports);
    let (haproxy, haproxy_addr) = start_haproxy(ports);
    let mut sides = vec![
        Side { name: "direct", addr: SocketAddr::from(([127, 0, 0, 1], ports[0])), pids: vec![] },
        Side { name: "cutover", addr: fleet.proxy, pids: vec![fleet.pid] },
        Side { name: "nginx", addr: nginx_addr, pids: with_children(nginx.child.id()) },
        Side { name: "haproxy", addr: haproxy_addr, pids: vec![haproxy.child.id()] },
    ];
    if let Some(base) = &base {
        sides.push(Side { name: "base", addr: base.proxy, pids: vec![base.pid] });
    }
    let rounds: usize = env_or("CUTOVER_BENCH_PEER_ROUNDS", 3).max(1);
    let secs: u32 = env_or("CUTOVER_BENCH_PEER_SECS", 3).max(1);
    let load_now = load_average();
    println!();
    println!(
        "== 4. proxy against nginx and HAProxy: `wrk --latency` (then `ab`) against one machine directly \
         and through each proxy to three machines; {rounds} rounds of {secs} s per side, the order rotating; medians; \
         load average {load_now} at the start; autogroups {} ==",
        autogroups()
    );
    println!(
        "| connections | direct req/s | cutover req/s | nginx req/s | HAProxy req/s \
         | **cutover / faster peer** | p50 ms: direct, cutover, nginx, HAProxy \
         | p99 ms: direct, cutover, nginx, HAProxy | p99 cutover / faster peer's \
         | proxy CPU µs/req: cutover, nginx, HAProxy | proxy sleeps/req: cutover, nginx, HAProxy |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let loads = [
        Load { conns: 1, close: false, ab: false },
        Load { conns: 16, close: false, ab: false },
        Load { conns: 64, close: false, ab: false },
        Load { conns: 16, close: true, ab: false },
        Load { conns: 16, close: true, ab: true },
        Load { conns: 16, close: false, ab: true },
    ];
    let mut failed = 0;
    let mut against_base = Vec::new();
    for load in loads {
        for side in &sides {
            let _ = round(side, load, 1);
        }
        let mut by_side: Vec<Vec<WrkRound>> = vec![Vec::new(); sides.len()];
        for i in 0..rounds {
            for k in 0..sides.len() {
                let s = (i + k) % sides.len();
                by_side[s].push(round(&sides[s], load, secs));
            }
        }
        failed += by_side.iter().flatten().map(|r| r.failed).sum::<u64>();
        let rps: Vec<f64> = by_side.iter().map(|rs| med(rs, |r| r.rps)).collect();
        let p50: Vec<f64> = by_side.iter().map(|rs| med(rs, |r| r.p50_ms)).collect();
        let p99: Vec<f64> = by_side.iter().map(|rs| med(rs, |r| r.p99_ms)).collect();
        let cpu: Vec<f64> = by_side.iter().map(|rs| med(rs, |r| r.cpu_us)).collect();
        let slept: Vec<f64> = by_side.iter().map(|rs| med(rs, |r| r.sleeps)).collect();
        // The faster peer is the one with the higher median rate; cutover is compared with it round by
        // round. Against the better of the two in each round instead, cutover meets the maximum of two
        // noisy rates, which is above either peer's own rate whenever the two are close: shown
        // beside it, as the stricter figure.
        let faster = if rps[2] >= rps[3] { 2 } else { 3 };
        let ratios = round_ratios(&by_side[1], |i| by_side[faster][i].rps);
        let strict = median(&mut round_ratios(&by_side[1], |i| by_side[2][i].rps.max(by_side[3][i].rps)));
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.2}×** ({:.2}–{:.2}, faster: {}; {:.2}× the better each round) \
             | {:.3}, {:.3}, {:.3}, {:.3} | {:.3}, {:.3}, {:.3}, {:.3} | {:.2}× | {:.1}, {:.1}, {:.1} \
             | {:.2}, {:.2}, {:.2} |",
            load.label(),
            rps[0],
            rps[1],
            rps[2],
            rps[3],
            median(&mut ratios.clone()),
            ratios[0],
            ratios[ratios.len() - 1],
            sides[faster].name,
            strict,
            p50[0],
            p50[1],
            p50[2],
            p50[3],
            p99[0],
            p99[1],
            p99[2],
            p99[3],
            p99[1] / p99[faster],
            cpu[1],
            cpu[2],
            cpu[3],
            slept[1],
            slept[2],
            slept[3],
        );
        if base.is_some() {
            let ratios = round_ratios(&by_side[1], |i| by_side[4][i].rps);
            against_base.push(format!(
                "| {} | {:.0} | {:.0} | **{:.2}×** ({:.2}–{:.2}) | {:.2}× | {:.3}, {:.3} | {:.1}, {:.1} | {:.2}, {:.2} |",
                load.label(),
                rps[1],
                rps[4],
                median(&mut ratios.clone()),
                ratios[0],
                ratios[ratios.len() - 1],
                rps[4] / rps[2].max(rps[3]),
                p99[1],
                p99[4],
                cpu[1],
                cpu[4],
                slept[1],
                slept[4],
            ));
        }
    }
    let load_end = load_average();
    println!(
        "(cutover / faster peer: median over rounds of cutover's rate over the faster peer's (the one with \
         the higher median rate) in the same round, min–max in brackets, then the same median against \
         whichever peer was faster in each round; failed requests over all rounds: {failed}; load average {load_end} at \
         the end)"
    );
    if let Some(exe) = &base_exe {
        println!("\nthis build against the base build {} in the same rounds:", exe.display());
        println!(
            "| connections | this build req/s | base req/s | **this / base** | base / faster peer \
             | p99 ms: this, base | CPU µs/req: this, base | sleeps/req: this, base |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for line in &against_base {
            println!("{line}");
        }
    }
    drop((nginx, haproxy));
    if let Some(base) = base {
        base.stop().await;
    }
    fleet.stop().await;
}

/// Round by round, `side`'s rate over `other(round)`'s, sorted.
fn round_ratios(side: &[WrkRound], other: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut ratios: Vec<f64> = side.iter().enumerate().map(|(i, r)| r.rps / other(i)).collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// Whether the kernel groups sessions for scheduling (`kernel.sched_autogroup_enabled`).
fn autogroups() -> &'static str {
    match std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled").as_deref().map(str::trim) {
        Ok("1") => "on",
        Ok(_) => "off",
        Err(_) => "not in this kernel",
    }
}

/// `/proc/loadavg`'s three figures (1, 5 and 15 minutes), as written.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
