//! A daemon started as `cutover local serve`, with two machines of the example app, for sections 2 and 3.

use super::*;

/// Stops the daemon (SIGTERM: it stops its machines first) if the bench ends early.
pub(crate) struct DaemonGuard(pub(crate) u32);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0 as libc::pid_t, libc::SIGTERM);
        }
    }
}

pub(crate) async fn ready(local: &LocalPlatform, id: &str) {
    local.wait_state(id, MachineState::Started, Duration::from_secs(30)).await.expect("machine started");
    local.wait_healthy(id, Duration::from_secs(30)).await.expect("machine healthy");
}

/// The example app as the bench registers it: `hello` run in `state`, an HTTP check on `/health`.
pub(crate) fn app_spec(hello: &Path, state: &Path) -> AppSpec {
    AppSpec {
        command: vec![hello.display().to_string()],
        cwd: state.to_path_buf(),
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
        proxy: Default::default(),
        kill_signal: "SIGINT".into(),
        kill_timeout_ms: 5000,
    }
}

/// The loopback port a machine of the example app listens on, from its own first words.
pub(crate) async fn machine_port(local: &LocalPlatform, machine: &str) -> u16 {
    let log = local.logs(machine, None).await.expect("machine log");
    log.split("listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("the machine says where it listens")
}

pub(crate) async fn on_daemon(hello: &Path) {
    let state = tempfile::tempdir().unwrap();
    let daemon = LocalDaemon::of(state.path());
    let info = daemon.ensure_running(&cutover_exe()).await.expect("start the local daemon");
    let guard = DaemonGuard(info.pid);
    let spec = app_spec(hello, state.path());
    let local = LocalPlatform::connect(&info, "bench", &spec).await.expect("register the app");
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
