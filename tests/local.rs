//! The local platform end to end: the `cutover` binary, its daemon, the example app (examples/app/server)
//! as real processes behind the real proxy, and real traffic. No timing assertions: what is checked is
//! what users would see (failed requests, which release answered) and what is left running.

use crate::support::{self, Cutover, OutputExt, Toml};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The example fly.toml, running the example app on the local platform.
pub(crate) fn example_app() -> Toml {
    Toml::example_app().set("cutover.local.command", support::example_app_binary())
}

/// An app directory with its own fly.toml and state; the daemon is stopped when it goes away.
pub(crate) struct App {
    dir: tempfile::TempDir,
}

impl App {
    /// An app directory holding `fly`.
    pub(crate) fn new(fly: Toml) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fly.write(dir.path().join("fly.toml"));
        Self { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("fly.toml").display().to_string()
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `cutover ARGS --config` this app's fly.toml, with its state.
    pub(crate) fn cutover(&self, args: &[&str]) -> Cutover {
        support::cutover(args).config(self.config()).state(self.state())
    }

    /// [`cutover`](Self::cutover), run to the end.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cutover(args).run()
    }

    /// `cutover demo --json` with a strategy: the report.
    fn demo(&self, strategy: &str) -> (Option<i32>, Value, String) {
        let out = self.run(&["demo", "--strategy", strategy, "--rate", "150", "--json"]);
        let stderr = out.stderr_text();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{strategy}: not a JSON report ({e}): {}\n{stderr}", out.stdout_text())
        });
        (out.status.code(), report, stderr)
    }

    /// Pids of processes running the example app that this app's daemon started.
    fn machine_pids(&self) -> Vec<u32> {
        processes_with(&support::example_app_binary(), &self.state())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.run(&["local", "down"]);
    }
}

/// Pids of live processes whose executable is `exe` and whose parent is a daemon of `state`.
fn processes_with(exe: &Path, state: &Path) -> Vec<u32> {
    let daemon_dir = state.join("local");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if !cmd.starts_with(exe.display().to_string().as_bytes()) {
            continue;
        }
        let ppid = stat(pid).map_or(0, |s| s.ppid);
        let parent = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&parent).contains(&daemon_dir.display().to_string()) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn strategies_that_wait_for_health_deploy_under_load_without_a_failed_request() {
    // Canary with short steps, so the test takes seconds rather than minutes.
    let app =
        App::new(example_app().set("cutover.params.steps", [20, 50]).set("cutover.params.step_pause", "1s"));
    for strategy in ["rolling", "bluegreen", "canary", "drain-then-destroy"] {
        let (code, report, stderr) = app.demo(strategy);
        assert_eq!(code, Some(0), "{strategy}: {report:#}\n{stderr}");
        let during = &report["during_deploy"];
        assert!(during["requests"].as_u64().unwrap() > 20, "{strategy}: too little traffic: {report:#}");
        assert_eq!(during["failed"], 0, "{strategy}: {report:#}");
        assert_eq!(report["overall"]["failed"], 0, "{strategy}: {report:#}");
        // Both releases answered while the deploy ran: traffic moved, it did not stop.
        let deployed = report["deployed"].as_u64().unwrap();
        let versions: Vec<u64> =
            during["by_version"].as_array().unwrap().iter().map(|p| p[0].as_u64().unwrap()).collect();
        assert!(versions.contains(&deployed), "{strategy}: the new release never answered: {report:#}");
        assert!(versions.len() >= 2, "{strategy}: only {versions:?} answered: {report:#}");
        assert!(app.machine_pids().is_empty(), "{strategy}: machines left running after the demo");
    }
}

#[test]
fn immediate_is_seen_dropping_requests() {
    // The measurement must be able to see a failure: immediate restarts every machine at once, and
    // the app takes 1.5 s to start.
    let app = App::new(example_app());
    let (code, report, stderr) = app.demo("immediate");
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert!(report["during_deploy"]["failed"].as_u64().unwrap() > 0, "{report:#}");
    let errors = report["during_deploy"]["errors"].to_string();
    assert!(errors.contains("503"), "no routable machine is a 503: {errors}");
}

#[test]
fn a_release_that_never_passes_its_checks_leaves_the_old_one_serving() {
    let app = App::new(example_app());
    let out = app.run(&["deploy", "--platform", "local", "--image", "registry.fly.io/hello-cutover:v1"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let out = app.run(&[
        "deploy",
        "--platform",
        "local",
        "--image",
        "registry.fly.io/hello-cutover:unhealthy",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let last: Value = serde_json::from_str(out.stdout_text().lines().last().unwrap()).unwrap();
    assert!(last["error"].as_str().unwrap().contains("checks"), "{last:#}");
    assert_eq!(last["fleet"]["by_version"], serde_json::json!([[1, 3]]), "rolled back: {last:#}");
    assert_eq!(last["fleet"]["serving"], 3, "{last:#}");

    // An app that exits at once fails the same way, and v1 still serves.
    let out = app.run(&[
        "deploy",
        "--platform",
        "local",
        "--image",
        "registry.fly.io/hello-cutover:crash",
        "--strategy",
        "bluegreen",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let last: Value = serde_json::from_str(out.stdout_text().lines().last().unwrap()).unwrap();
    assert_eq!(last["fleet"]["by_version"], serde_json::json!([[1, 3]]), "{last:#}");
    assert_eq!(last["fleet"]["serving"], 3, "{last:#}");
    assert_eq!(app.machine_pids().len(), 3, "green was removed, blue kept");

    let out = app.run(&["local", "down"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(app.machine_pids().is_empty(), "`local down` stops every machine");
}

/// `cutover status --platform local --json`: the app's fleet by release, and how many serve.
fn status(app: &App) -> Value {
    let out = app.run(&["status", "--platform", "local", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    out.json()
}

#[test]
fn a_deploy_killed_mid_way_on_real_processes_is_resumed_or_rolled_back_with_nothing_orphaned() {
    // Short leases: the killed deploy's leases lapse (the daemon keeps them) before a resume may go on.
    let app = App::new(example_app().set("cutover.lease_ttl", "2s"));
    let deploy = |version: u64, kill_at: Option<u64>| {
        support::cutover([
            "deploy",
            "--platform",
            "local",
            "--strategy",
            "bluegreen",
            "--config",
            &app.config(),
        ])
        .args(["--image", &format!("registry.fly.io/hello-cutover:v{version}")])
        .state(app.state())
        .kill_at_event(kill_at)
        .run()
    };
    assert_eq!(deploy(1, None).status.code(), Some(0), "the first launch");
    assert_eq!(app.machine_pids().len(), 3);

    // Killed once green is up, just before the answer of the clone call is journaled (event 9): the
    // three green processes run, and the journal does not say which they are.
    let out = deploy(2, Some(9));
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(9), "{}", out.text());
    assert_eq!(app.machine_pids().len(), 6, "green was created before the kill");
    let before = status(&app);
    assert_eq!(before["latest"]["status"], "interrupted", "{before:#}");

    let out = app.run(&["resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.text().contains("reconciled `machines.clone-from"), "{}", out.text());
    let after = status(&app);
    assert_eq!(after["fleet"]["by_version"], serde_json::json!([[2, 3]]), "{after:#}");
    assert_eq!(after["fleet"]["serving"], 3, "{after:#}");
    assert_eq!(app.machine_pids().len(), 3, "the green made before the kill was adopted, not made twice");

    // The same crash, then a rollback: the strategy undoes its green, and v2 serves as before.
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&deploy(3, Some(9)).status), Some(9));
    assert_eq!(app.machine_pids().len(), 6);
    let out = app.run(&["rollback"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.text().contains("Rolled back to v2"), "{}", out.text());
    let after = status(&app);
    assert_eq!(after["fleet"]["by_version"], serde_json::json!([[2, 3]]), "{after:#}");
    assert_eq!(after["fleet"]["serving"], 3, "{after:#}");
    assert_eq!(app.machine_pids().len(), 3, "green was destroyed: no process left behind");
    assert_eq!(after["latest"]["status"], "failed", "the interrupted deploy is closed: {after:#}");
}

#[test]
fn a_command_that_does_not_exist_is_a_clear_error() {
    let app = App::new(example_app().set("cutover.local.command", "./no-such-app --flag"));
    let out = app.run(&["deploy", "--platform", "local"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let t = out.text();
    assert!(t.contains("no-such-app") && t.contains("[cutover.local] command"), "{t}");
    assert!(t.contains("the app is empty again"), "{t}");
}

#[test]
fn a_proxy_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let app = App::new(example_app().set("cutover.local.port", port));
    let out = app.run(&["deploy", "--platform", "local"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let t = out.text();
    assert!(t.contains(&format!("127.0.0.1:{port}")) && t.contains("port"), "{t}");
    assert!(app.machine_pids().is_empty());
}

/// The daemon's base URL for an app's state.
pub(crate) fn daemon_url(app: &App) -> String {
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(app.state().join("local/daemon.json")).unwrap())
            .unwrap();
    info["url"].as_str().unwrap().to_string()
}

/// The daemon's token, as its owner reads it.
fn daemon_token(app: &App) -> String {
    std::fs::read_to_string(app.state().join("local/daemon.token")).unwrap().trim().to_string()
}

/// An HTTP client presenting the daemon's token, as its owner's tools would.
pub(crate) fn daemon_http(app: &App) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {}", daemon_token(app)).parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    match http.get(url).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// (proxy address, machines as the daemon lists them).
pub(crate) async fn fleet(app: &App, name: &str) -> (String, Vec<Value>) {
    let url = daemon_url(app);
    let http = daemon_http(app);
    let proxy = get_json(&http, &format!("{url}/cutover/v1/status")).await["apps"][name]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let machines = get_json(&http, &format!("{url}/v1/apps/{name}/machines"))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    (proxy, machines)
}

async fn connections(app: &App, name: &str, id: &str) -> u64 {
    let url = daemon_url(app);
    get_json(&daemon_http(app), &format!("{url}/cutover/v1/apps/{name}/machines/{id}/connections")).await["connections"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_keeps_a_websocket_open_until_it_closes_then_destroys_its_machine() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = App::new(
        example_app().set("cutover.params.drain_timeout", "2m").set("cutover.params.poll_interval", "200ms"),
    );
    let out = app.run(&["deploy", "--platform", "local"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let (proxy, blue) = fleet(&app, "hello-cutover").await;
    assert_eq!(blue.len(), 3);

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{proxy}/ws")).await.expect("websocket");
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), "before");
    let mut pinned = Vec::new();
    for m in &blue {
        let id = m["id"].as_str().unwrap().to_string();
        if connections(&app, "hello-cutover", &id).await == 1 {
            pinned.push(id);
        }
    }
    assert_eq!(pinned.len(), 1, "the WebSocket is one connection on one machine");
    let pinned = pinned[0].clone();

    let deploy = tokio::spawn(
        app.cutover(&["deploy", "--platform", "local", "--strategy", "drain-then-destroy", "--json"])
            .run_async(),
    );

    // Blue machines without connections go; the pinned one stays, and its WebSocket still works.
    let mut waited = 0;
    loop {
        let (_, machines) = fleet(&app, "hello-cutover").await;
        let blue_left: Vec<&Value> =
            machines.iter().filter(|m| blue.iter().any(|b| b["id"] == m["id"])).collect();
        if blue_left.len() == 1 {
            assert_eq!(
                blue_left[0]["id"],
                pinned.as_str(),
                "only the machine with the open WebSocket is kept"
            );
            // It takes no new connections: the local platform splits by weight, so the switch gave
            // the new release 100% and left blue uncordoned (a platform without weights cordons it).
            let weights = get_json(
                &daemon_http(&app),
                &format!("{}/cutover/v1/apps/hello-cutover/weights", daemon_url(&app)),
            )
            .await;
            let version = blue_left[0]["config"]["metadata"]["fly_release_version"].clone();
            let shares: Vec<(String, u64)> = weights
                .as_array()
                .expect("weights")
                .iter()
                .map(|w| (w["version"].to_string(), w["percent"].as_u64().unwrap()))
                .collect();
            assert!(
                blue_left[0]["cordoned"].as_bool().unwrap()
                    || (!shares.is_empty()
                        && shares
                            .iter()
                            .all(|(v, p)| *p == 0 || v.trim_matches('"') != version.as_str().unwrap())),
                "it takes no new connections: {weights} ({version})"
            );
            break;
        }
        waited += 1;
        assert!(waited < 600, "the other blue machines were never destroyed: {machines:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!deploy.is_finished(), "the deploy waits for the WebSocket");
    ws.send(Message::text("during")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), "during");

    // The client closes; the deploy then destroys its machine and ends, having cut nothing.
    ws.close(None).await.unwrap();
    let out = deploy.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let stdout = out.stdout_text();
    assert!(stdout.contains("0 connections cut"), "{stdout}");
    let (_, machines) = fleet(&app, "hello-cutover").await;
    assert_eq!(machines.len(), 3);
    assert!(machines.iter().all(|m| !blue.iter().any(|b| b["id"] == m["id"])), "every blue machine is gone");
}

#[test]
fn machines_run_in_sessions_of_their_own_die_with_their_daemon_and_keep_their_logs() {
    let app = App::new(example_app());
    let out = app.run(&["deploy", "--platform", "local"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let out = app.run(&["logs"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let logs = out.stdout_text();
    assert_eq!(logs.matches("==> machine").count(), 3, "{logs}");
    assert!(logs.contains("listening on"), "the app's own output is kept: {logs}");

    let pids = app.machine_pids();
    assert_eq!(pids.len(), 3);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(app.state().join("local/daemon.json")).unwrap())
            .unwrap();
    let daemon = info["pid"].as_i64().unwrap();
    // As separate VMs are: the kernel's autogroups then share the CPU between machines and the proxy.
    for &pid in &pids {
        assert_eq!(session(pid), Some(pid), "machine {pid} runs in a session of its own");
    }
    assert_eq!(session(daemon as u32), Some(daemon as u32), "the daemon runs in its own session");
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        pids.iter().all(|p| !Path::new(&format!("/proc/{p}")).exists() || is_zombie(*p))
    });
    assert!(gone, "machines outlived their daemon: {pids:?}");
}

/// What the tests read of a process's `/proc/PID/stat`.
struct Stat {
    /// `R`, `S`, … `Z` for a zombie.
    state: char,
    ppid: u32,
    session: u32,
}

/// `pid`'s `/proc/PID/stat`; `None` once it is gone.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command, in parentheses that may hold anything: state, ppid, pgrp, session.
    let mut fields = text.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let session = fields.nth(1)?.parse().ok()?;
    Some(Stat { state, ppid, session })
}

/// The session `pid` belongs to.
fn session(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.session)
}

/// Gone, or exited and not yet reaped.
fn is_zombie(pid: u32) -> bool {
    stat(pid).is_none_or(|s| s.state == 'Z')
}

/// Stopping a machine signals every process it started, not only its own (a shell that runs the
/// app with a helper beside it), and a machine whose process exits takes what it left running with
/// it: as a Fly machine's processes live and end with its VM.
#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_machine_or_its_process_exiting_ends_every_process_it_started() {
    let app = App::new(example_app());
    let out = app.run(&["local", "up"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let (url, http) = (daemon_url(&app), daemon_http(&app));
    // A helper left running in the background, its pid written where the test can read it.
    let cases = [
        ("stopped", r#"sleep 300 & echo $! > helper-stopped.pid; exec "$0""#),
        ("exits", r#"sleep 300 & echo $! > helper-exits.pid; exit 3"#),
    ];
    for (name, script) in cases {
        let spec = serde_json::json!({
            "command": ["sh", "-c", script, support::example_app_binary()], "cwd": app.dir.path(),
            "kill_signal": "SIGINT", "kill_timeout_ms": 5000, "checks": [], "port": 0
        });
        let r = http.put(format!("{url}/cutover/v1/apps/group-{name}")).json(&spec).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let machines = format!("{url}/v1/apps/group-{name}/machines");
        let body = serde_json::json!({"config": {"image": "img:v1"}, "region": "ams"});
        let m: Value = http.post(&machines).json(&body).send().await.unwrap().json().await.unwrap();
        let id = m["id"].as_str().unwrap().to_string();
        let pid_file = app.dir.path().join(format!("helper-{name}.pid"));
        let mut helper = None;
        support::eventually(&format!("{name}: the machine's helper to start"), || {
            helper = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok());
            helper.is_some()
        })
        .await;
        let helper = helper.expect("read when it started");
        if name == "stopped" {
            assert!(!is_zombie(helper), "the helper runs beside the machine's process");
            let r = http.post(format!("{machines}/{id}/stop")).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            let r = http.get(format!("{machines}/{id}/wait?state=stopped&timeout=10")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{name}: the machine stops");
        }
        support::eventually(&format!("{name}: the helper {helper} to end with its machine"), || {
            is_zombie(helper)
        })
        .await;
        let m: Value = http.get(format!("{machines}/{id}")).send().await.unwrap().json().await.unwrap();
        let want = if name == "stopped" { "stopped" } else { "failed" };
        assert_eq!(m["state"], want, "{name}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_speaks_the_machines_api_including_leases() {
    let app = App::new(example_app());
    let out = app.run(&["local", "up"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let url = daemon_url(&app);
    let http = daemon_http(&app);
    let spec = serde_json::json!({
        "command": [support::example_app_binary()], "cwd": app.dir.path(), "kill_signal": "SIGINT", "kill_timeout_ms": 5000,
        "checks": [], "port": 0
    });
    let r = http.put(format!("{url}/cutover/v1/apps/api-test")).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let machines = format!("{url}/v1/apps/api-test/machines");
    let body = serde_json::json!({"config": {"image": "img:v1", "metadata": {"fly_release_version": "1"}}, "region": "ams"});
    let m: Value = http.post(&machines).json(&body).send().await.unwrap().json().await.unwrap();
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!((m["state"].as_str(), m["region"].as_str()), (Some("started"), Some("ams")));
    assert_eq!(m["config"]["metadata"]["fly_process_group"], "app", "flyctl's default group");
    let r = http.get(format!("{machines}/{id}/wait?state=started&timeout=5")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A lease: a second holder is refused with the owner named; mutations need the nonce.
    let lease: Value = http
        .post(format!("{machines}/{id}/lease?ttl=30"))
        .header("fly-machine-lease-owner", "first@example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nonce = lease["data"]["nonce"].as_str().unwrap().to_string();
    let r = http.post(format!("{machines}/{id}/lease?ttl=30")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("first@example"));
    assert_eq!(http.post(format!("{machines}/{id}/cordon")).send().await.unwrap().status(), 409);
    let with_nonce = |rb: reqwest::RequestBuilder| rb.header("fly-machine-lease-nonce", &nonce);
    assert_eq!(with_nonce(http.post(format!("{machines}/{id}/cordon"))).send().await.unwrap().status(), 200);
    let m: Value = http.get(format!("{machines}/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["cordoned"], true);
    let r = with_nonce(http.post(format!("{machines}/{id}/metadata/owner")))
        .json(&serde_json::json!({"value": "me"}));
    assert!(r.send().await.unwrap().status().is_success());
    let meta: Value =
        http.get(format!("{machines}/{id}/metadata")).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["owner"], "me");

    // Destroying a running machine needs kill=true; a machine already gone is a 404.
    assert_eq!(with_nonce(http.delete(format!("{machines}/{id}"))).send().await.unwrap().status(), 409);
    assert_eq!(
        with_nonce(http.delete(format!("{machines}/{id}?kill=true"))).send().await.unwrap().status(),
        200
    );
    assert_eq!(http.delete(format!("{machines}/{id}?kill=true")).send().await.unwrap().status(), 404);
    let r = http.get(format!("{machines}/{id}/wait?state=destroyed&timeout=5")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let all: Value = http.get(&machines).send().await.unwrap().json().await.unwrap();
    assert_eq!(all, serde_json::json!([]));
}

/// The output of a deploy going away on real processes: stdout closed after the first event
/// (`cutover deploy --json | head -1`), then a terminal hang-up (SIGHUP) after the first event. Each
/// deploy goes on to the end: exit 0, one warning, the release succeeded and the fleet on it.
#[test]
fn a_deploy_survives_its_output_going_away_on_real_processes() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let app = App::new(example_app());
    let out = app.run(&["deploy", "--platform", "local", "--image", "registry.fly.io/hello-cutover:v1"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());

    for (version, hang_up) in [(2u64, false), (3, true)] {
        let image = format!("registry.fly.io/hello-cutover:v{version}");
        let mut child = app
            .cutover(&["deploy", "--platform", "local", "--image", &image, "--json"])
            .spawn(Stdio::piped(), Stdio::piped());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.contains("deploy_started"), "{first}");
        let drain = if hang_up {
            // SAFETY: kill(2) on the id of a child this test spawned and has not waited for.
            assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) }, 0);
            // The pipe stays open: its reader keeps going, as a terminal that came back would.
            Some(std::thread::spawn(move || {
                let mut rest = String::new();
                let _ = stdout.read_to_string(&mut rest);
                rest
            }))
        } else {
            drop(stdout);
            None
        };
        let exit = child.wait().unwrap();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert_eq!(exit.code(), Some(0), "v{version}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let warning =
            if hang_up { "warning: the terminal hung up" } else { "warning: standard output went away" };
        assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
        if let Some(drain) = drain {
            assert!(drain.join().unwrap().contains("deploy_finished"));
        }
        let s = status(&app);
        assert_eq!(s["latest"]["status"], "succeeded", "{s:#}");
        assert_eq!(s["fleet"]["by_version"], serde_json::json!([[version, 3]]), "{s:#}");
        assert_eq!(s["fleet"]["serving"], 3, "{s:#}");
    }
}

/// Sends `request` to the proxy on a raw socket; everything it answers until it closes.
async fn raw_exchange(proxy: &str, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let _ = s.write_all(request.as_bytes()).await;
    let mut got = Vec::new();
    let read = s.read_to_end(&mut got);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("the proxy kept the connection");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_bounds_in_cutover_local_reach_the_daemons_proxy() {
    let app = App::new(example_app().set("cutover.local.max_headers", 10));
    let out = app.run(&["deploy", "--platform", "local"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let (proxy, _) = fleet(&app, "hello-cutover").await;
    let headers = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let ok =
        raw_exchange(&proxy, format!("GET / HTTP/1.1\r\nHost: a\r\n{}Connection: close\r\n\r\n", headers(5)))
            .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let many = raw_exchange(&proxy, format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", headers(12))).await;
    assert!(many.starts_with("HTTP/1.1 431") && many.contains("bound of 10"), "{many}");
    let smuggle =
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let resp = raw_exchange(&proxy, smuggle.into()).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
}
