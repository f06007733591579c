//! 3. Proxy overhead: the same load against a machine directly and through the daemon's proxy.

use super::*;

/// CPU time (user + system) a process has used.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// The pid of the daemon's child whose environment has `PORT=port`.
pub(crate) fn machine_pid(daemon: u32, port: u16) -> Option<u32> {
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
pub(crate) struct Round {
    pub(crate) rps: f64,
    p50: f64,
    p99: f64,
    pub(crate) failed: usize,
    /// CPU µs per request: load generator (this process), proxy (the daemon), app.
    pub(crate) cpu: [f64; 3],
}

pub(crate) async fn round(
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

pub(crate) async fn proxy_overhead(local: &LocalPlatform, proxy: SocketAddr, machine: &str, daemon_pid: u32) {
    let rounds: usize = env_or("CUTOVER_BENCH_ROUNDS", 7).max(1);
    let length = Duration::from_secs(1);
    let port = machine_port(local, machine).await;
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
pub(crate) fn minimal_forwarder(backend: SocketAddr) -> SocketAddr {
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
