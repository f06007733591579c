//! The Fly.io platform against a fake Machines API (`support/fake_fly.rs`) that implements the
//! documented shapes, leases and failure modes; and the same client against the local platform's
//! daemon where the two overlap (leases, destroy of a missing machine, waits past the server's cap).

use crate::support::{self, fake_fly};

use cutover::config::Config;
use cutover::core::events::{Collect, Outcome};
use cutover::core::{ErrorKind, MachineState, Platform, Release};
use cutover::driver::lease::DeployLeases;
use cutover::driver::{Deploy, DeployError, PlatformFlags, Purpose, StateDir, Target};
use cutover::fly::{FlyOptions, FlyPlatform};
use cutover::local::LocalPlatform;
use cutover::local::daemon::fleet::AppSpec;
use cutover::machines_api::{RetryPolicy, Token};
use fake_fly::{FakeFly, FakeOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

const APP: &str = "flyapp";
const V1: &str = "registry.fly.io/flyapp:deployment-1";
const V2: &str = "registry.fly.io/flyapp:deployment-2";
/// A token distinctive enough to find anywhere it leaks.
const TOKEN: &str = "fo1_ZZtokenNEVERprintedZZ";

/// Fast retries for tests: the policy's shape, not its pauses, is what is under test.
fn quick_retry() -> RetryPolicy {
    RetryPolicy { attempts: 5, base_delay: Duration::from_millis(20), max_delay: Duration::from_secs(2) }
}

fn fly_platform(url: &str, token: &str) -> FlyPlatform {
    let mut opts = FlyOptions::new(Token::new(token).unwrap());
    opts.api_url = url.to_string();
    opts.retry = quick_retry();
    opts.health_poll = Duration::from_millis(50);
    opts.strategy = Some("test".into());
    FlyPlatform::new(APP, opts)
}

/// A fake with `n` machines of APP on v1, spread over two regions.
async fn fake_with_fleet(n: usize) -> FakeFly {
    let fake = FakeFly::start(FakeOptions { token: TOKEN.into(), ..FakeOptions::default() }).await;
    for i in 0..n {
        fake.state.seed(APP, V1, 1, if i % 2 == 0 { "ams" } else { "iad" }, "app");
    }
    // A machine of another app, which no deploy of APP may touch.
    fake.state.seed("neighbour", V1, 1, "ams", "app");
    fake
}

/// An app directory whose fly.toml deploys APP on the fake.
fn app_dir(url: &str, strategy: &str, extra_deploy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"app = "{APP}"
kill_timeout = "1s"

[build]
image = "{V2}"

[deploy]
strategy = "{strategy}"
{extra_deploy}

[cutover]
platform = "fly"
lease_ttl = "4s"

[cutover.fly]
api_url = "{url}"

[cutover.params]
steps = [50]
step_pause = "200ms"
drain_timeout = "300ms"
poll_interval = "100ms"
"#
    );
    std::fs::write(dir.path().join("fly.toml"), toml).unwrap();
    dir
}

/// Deploy with the library's driver; the events it recorded come back with the result.
async fn deploy(
    dir: &tempfile::TempDir,
) -> (Result<cutover::driver::DeployReport, DeployError>, Arc<Collect>) {
    let config = Config::load(&dir.path().join("fly.toml")).unwrap();
    let flags = PlatformFlags { access_token: Token::new(TOKEN), ..Default::default() };
    let state = StateDir::at(dir.path().join("state"));
    let target = Target::resolve(&config, flags, Some(state), Purpose::Deploy);
    let runtime = support::runtime();
    let sink = Arc::new(Collect::default());
    let d = Deploy { config: &config, target: &target, runtime: &runtime, sink: sink.clone() };
    (d.run().await, sink)
}

fn machines_of(fake: &FakeFly, app: &str) -> Vec<fake_fly::FakeMachine> {
    fake.state.machines().into_iter().filter(|m| m.app == app).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_builtin_strategy_deploys_through_5xx_bursts_and_releases_every_lease() {
    for strategy in ["immediate", "rolling", "bluegreen", "canary", "drain-then-destroy"] {
        let fake = fake_with_fleet(4).await;
        {
            let mut faults = fake.state.faults.lock().unwrap();
            faults.every = Some(9);
            faults.retry_after = Some(0);
        }
        let dir = app_dir(&fake.url, strategy, "");
        let (report, events) = deploy(&dir).await;
        let report = report.unwrap_or_else(|e| panic!("{strategy}: did not start: {e}"));
        assert_eq!(report.outcome, Outcome::Succeeded, "{strategy}: {:?}", report.error);

        // `immediate` does not wait for machines to come back: give them their boot time.
        for _ in 0..40 {
            if machines_of(&fake, APP).iter().all(|m| m.api.state == "started") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let machines = machines_of(&fake, APP);
        assert_eq!(machines.len(), 4, "{strategy}: the fleet keeps its size (no duplicate creates)");
        for m in &machines {
            let meta = &m.api.config.metadata;
            assert_eq!(m.api.config.image, V2, "{strategy}");
            assert_eq!(meta.get("fly_release_version").map(String::as_str), Some("2"), "{strategy}");
            assert_eq!(meta.get("fly_process_group").map(String::as_str), Some("app"), "{strategy}");
            assert_eq!(meta.get("cutover_release_image").map(String::as_str), Some(V2), "{strategy}");
            assert_eq!(meta.get("cutover_strategy").map(String::as_str), Some(strategy), "{strategy}");
            assert_eq!(m.api.state, "started", "{strategy}");
            assert!(!m.api.cordoned, "{strategy}: every machine is back in rotation");
        }
        assert!(
            fake.state.live_leases().is_empty(),
            "{strategy}: leases left: {:?}",
            fake.state.live_leases()
        );
        let neighbour = machines_of(&fake, "neighbour");
        assert_eq!(neighbour[0].api.config.image, V1, "{strategy}: another app's machine is untouched");
        let seen = fake.state.seen();
        assert!(seen.iter().any(|s| s.method == "POST" && s.path.ends_with("/lease")), "{strategy}: leased");
        assert!(
            seen.iter().all(|s| !s.path.contains("/apps/neighbour/")),
            "{strategy}: never reached neighbour"
        );
        let unleased: Vec<_> = seen
            .iter()
            .filter(|s| s.method != "GET" && s.path.contains("/machines/") && !s.path.ends_with("/lease"))
            .filter(|s| !s.nonce)
            .collect();
        assert!(unleased.is_empty(), "{strategy}: mutations without the lease nonce: {unleased:?}");
        let text = serde_json::to_string(&events.events()).unwrap();
        assert!(!text.contains(TOKEN), "{strategy}: the token is in an event");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_release_fails_cleanly_and_releases_every_lease() {
    for strategy in ["rolling", "bluegreen"] {
        let fake = fake_with_fleet(3).await;
        fake.state.faults.lock().unwrap().unhealthy_images.insert(V2.into());
        let dir = app_dir(&fake.url, strategy, "wait_timeout = \"1s\"");
        let (report, _) = deploy(&dir).await;
        let report = report.unwrap();
        assert_eq!(report.outcome, Outcome::Failed, "{strategy}");
        let machines = machines_of(&fake, APP);
        assert_eq!(machines.len(), 3, "{strategy}: green is gone, blue is all there is");
        assert!(
            machines.iter().all(|m| m.api.config.image == V1 && m.api.state == "started" && !m.api.cordoned),
            "{strategy}: the fleet is back on v1 and serving: {:?}",
            machines.iter().map(|m| (&m.api.config.image, &m.api.state, m.api.cordoned)).collect::<Vec<_>>()
        );
        assert!(fake.state.live_leases().is_empty(), "{strategy}: leases left after a failure");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deploy_fails_fast_naming_the_lease_holder() {
    let fake = fake_with_fleet(3).await;
    let held = machines_of(&fake, APP)[1].api.id.clone();
    fake.state.lease_as(&held, "other-deployer@example.com", Duration::from_secs(60));
    let dir = app_dir(&fake.url, "rolling", "");
    let started = Instant::now();
    let (result, _) = deploy(&dir).await;
    let Err(DeployError::Busy(message)) = result else { panic!("expected Busy, got {result:?}") };
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    assert!(message.contains("other-deployer@example.com"), "{message}");
    assert!(message.contains(&held) && message.contains("until") && message.contains(" s)"), "{message}");
    // Nothing changed; the leases we took are back; theirs stays.
    let changes: Vec<_> =
        fake.state.seen().into_iter().filter(|s| s.method != "GET" && !s.path.ends_with("/lease")).collect();
    assert!(changes.is_empty(), "{changes:?}");
    let live = fake.state.live_leases();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].0, held);
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_are_refreshed_at_half_their_ttl_and_released_at_the_end() {
    let fake = fake_with_fleet(2).await;
    let platform: Arc<dyn Platform> = Arc::new(fly_platform(&fake.url, TOKEN));
    let ids: Vec<String> = platform.list().await.unwrap().into_iter().map(|m| m.id).collect();
    let leases = DeployLeases::acquire(platform.clone(), &ids, Duration::from_secs(2), 4).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(fake.state.live_leases().len(), 2, "still held past the 2 s TTL");
    assert!(fake.state.refreshes() >= 4, "refreshed about every second: {}", fake.state.refreshes());
    // A machine created while leases are held is leased too, and released with the rest.
    let green = Platform::clone_from(&*platform, &ids[0], &Release { version: 2, image: V2.into() }, false)
        .await
        .unwrap();
    assert!(fake.state.live_leases().iter().any(|(id, _)| *id == green.id));
    assert_eq!(leases.release().await, 0);
    assert!(fake.state.live_leases().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_errors_are_retried_and_creates_are_idempotent() {
    let fake = fake_with_fleet(2).await;
    let fly = fly_platform(&fake.url, TOKEN);

    // A burst of 503s with Retry-After: waited out, as the server asked.
    {
        let mut f = fake.state.faults.lock().unwrap();
        (f.burst, f.burst_status, f.retry_after) = (2, 503, Some(1));
    }
    let started = Instant::now();
    assert_eq!(fly.list().await.unwrap().len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After honoured: {:?}", started.elapsed());

    // 429s too; then a burst longer than the attempts is reported, with the count.
    {
        let mut f = fake.state.faults.lock().unwrap();
        (f.burst, f.burst_status, f.retry_after) = (3, 429, None);
    }
    assert_eq!(fly.list().await.unwrap().len(), 2);
    fake.state.faults.lock().unwrap().burst = 10;
    fake.state.faults.lock().unwrap().burst_status = 502;
    let e = fly.list().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Platform);
    assert!(e.message.contains("after 5 attempts"), "{e}");
    fake.state.faults.lock().unwrap().burst = 0;

    // A create whose answer is lost is found again by its launch id, not made twice.
    let source = fly.list().await.unwrap()[0].id.clone();
    fake.state.faults.lock().unwrap().lose_creates = 1;
    let green = fly.clone_from(&source, &Release { version: 2, image: V2.into() }, false).await.unwrap();
    let all = machines_of(&fake, APP);
    assert_eq!(all.len(), 3, "exactly one new machine");
    assert!(all.iter().any(|m| m.api.id == green.id));
    assert!(green.cordoned, "created with skip_service_registration: not routable");
    let launch_ids: std::collections::BTreeSet<_> =
        all.iter().filter_map(|m| m.api.config.metadata.get("cutover_launch_id")).collect();
    assert_eq!(launch_ids.len(), 1, "only the clone carries a launch id");

    // A wrong token is denied, with what to do, and is never echoed.
    let wrong = fly_platform(&fake.url, "fo1_WRONGtokenZZ");
    let e = wrong.list().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied);
    assert!(e.message.contains("FLY_API_TOKEN"), "{e}");
    assert!(!format!("{e} {e:?} {wrong:?}").contains("WRONGtoken"));
    // Every request carried the bearer token.
    assert!(fake.state.seen().iter().all(|s| s.authorization.starts_with("Bearer ")));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_read_from_checks_and_a_warning_is_not_passing() {
    let fake = fake_with_fleet(1).await;
    fake.state.faults.lock().unwrap().unhealthy_images.insert(V2.into());
    let fly = fly_platform(&fake.url, TOKEN);
    let id = fly.list().await.unwrap()[0].id.clone();
    fly.wait_healthy(&id, Duration::from_secs(1)).await.unwrap();
    fly.update(&id, &Release { version: 2, image: V2.into() }).await.unwrap();
    fly.wait_state(&id, MachineState::Started, Duration::from_secs(5)).await.unwrap();
    let e = fly.wait_healthy(&id, Duration::from_millis(500)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.message.contains("http: critical"), "{e}");
    // A check at `warning` is not passing either.
    let v3 = "registry.fly.io/flyapp:deployment-3";
    fake.state.faults.lock().unwrap().warning_images.insert(v3.into());
    fly.update(&id, &Release { version: 3, image: v3.into() }).await.unwrap();
    fly.wait_state(&id, MachineState::Started, Duration::from_secs(5)).await.unwrap();
    let e = fly.wait_healthy(&id, Duration::from_millis(500)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.message.contains("http: warning"), "{e}");
    let caps = fly.capabilities();
    assert!(caps.cordon && !caps.weights && !caps.connection_counts && !caps.stats);
    let e = fly.connections(&id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

// ---- the same client against both servers -------------------------------------------------------

/// A server the Machines API client talks to, with one running machine of APP.
struct Server {
    name: &'static str,
    /// Two independent clients: two deployers.
    first: Arc<dyn Platform>,
    second: Arc<dyn Platform>,
    machine: String,
    /// Raw requests: base URL of APP's machines and the auth header.
    machines_url: String,
    auth: Option<String>,
    /// The first deployer's Machines API client, for the calls the Platform trait does not have.
    client: Option<cutover::machines_api::Client>,
    /// How the server is stopped at the end.
    stop: Option<Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>>,
}

async fn fake_server() -> Server {
    let fake = fake_with_fleet(1).await;
    let fly = fly_platform(&fake.url, TOKEN);
    let client = Some(fly.client().clone());
    let first: Arc<dyn Platform> = Arc::new(fly);
    let second: Arc<dyn Platform> = Arc::new(fly_platform(&fake.url, TOKEN));
    let machine = first.list().await.unwrap()[0].id.clone();
    let machines_url = format!("{}/apps/{APP}/machines", fake.url);
    Server {
        name: "fake fly",
        first,
        second,
        machine,
        machines_url,
        auth: Some(format!("Bearer {TOKEN}")),
        client,
        stop: None,
    }
}

async fn local_server(dir: &std::path::Path) -> Server {
    let daemon_dir = dir.join("local");
    let serve_dir = daemon_dir.clone();
    let served = tokio::spawn(async move {
        cutover::local::daemon::serve(&serve_dir, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await
    });
    let info_path = daemon_dir.join("daemon.json");
    let mut url = None;
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&info_path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            url = v["url"].as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let url = url.expect("the daemon came up");
    let spec = AppSpec {
        command: vec!["sleep".into(), "600".into()],
        cwd: dir.to_path_buf(),
        env: Default::default(),
        checks: vec![],
        port: 0,
        tcp: true,
        kill_signal: "SIGTERM".into(),
        kill_timeout_ms: 1000,
    };
    let first = Arc::new(LocalPlatform::connect(&url, APP, &spec).await.unwrap());
    let client = Some(first.client().clone());
    let second = Arc::new(LocalPlatform::connect(&url, APP, &spec).await.unwrap());
    let m = first.create_machine(&Release { version: 1, image: V1.into() }, "ams", "app").await.unwrap();
    first.wait_state(&m.id, MachineState::Started, Duration::from_secs(5)).await.unwrap();
    let shutdown = format!("{url}/cutover/v1/shutdown");
    Server {
        name: "local daemon",
        first,
        second,
        machine: m.id,
        machines_url: format!("{url}/v1/apps/{APP}/machines"),
        auth: None,
        client,
        stop: Some(Box::new(move || {
            Box::pin(async move {
                let _ = reqwest::Client::new().post(shutdown).send().await;
                let _ = served.await;
            })
        })),
    }
}

/// Leases: one holder at a time, named in the refusal; mutations need the nonce; refresh; release.
async fn leases_contract(s: &Server) {
    let ttl = Duration::from_secs(30);
    let lease = s.first.acquire_lease(&s.machine, ttl).await.unwrap();
    assert!(!lease.nonce.is_empty(), "{}", s.name);
    let e = s.second.acquire_lease(&s.machine, ttl).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{}: {e}", s.name);
    assert!(e.message.contains(&lease.owner) && e.message.contains("until"), "{}: {e}", s.name);
    // The other client holds no nonce, so its mutation is refused; ours carries it.
    let e = s.second.cordon(&s.machine).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{}: {e}", s.name);
    let http = reqwest::Client::new();
    let mut raw = http.post(format!("{}/{}/cordon", s.machines_url, s.machine));
    if let Some(a) = &s.auth {
        raw = raw.header("authorization", a);
    }
    let status = raw.send().await.unwrap().status().as_u16();
    assert!(status == 409 || status == 412, "{}: a raw mutation without the nonce: {status}", s.name);
    s.first.cordon(&s.machine).await.unwrap();
    assert!(s.first.get(&s.machine).await.unwrap().cordoned, "{}", s.name);
    s.first.uncordon(&s.machine).await.unwrap();
    s.first.set_metadata(&s.machine, "cutover_test", "yes").await.unwrap();
    if let Some(client) = &s.client {
        assert_eq!(
            client.metadata(&s.machine).await.unwrap().get("cutover_test").map(String::as_str),
            Some("yes")
        );
        client.delete_metadata(&s.machine, "cutover_test").await.unwrap();
        assert!(!client.metadata(&s.machine).await.unwrap().contains_key("cutover_test"), "{}", s.name);
    }
    let refreshed = s.first.refresh_lease(&s.machine).await.unwrap();
    assert!(refreshed.expires_at >= lease.expires_at, "{}", s.name);
    // The other client cannot release it either.
    assert_eq!(s.second.held_leases(), Vec::<String>::new());
    s.first.release_lease(&s.machine).await.unwrap();
    assert!(s.first.held_leases().is_empty(), "{}", s.name);
    s.second.acquire_lease(&s.machine, ttl).await.unwrap();
    s.second.release_lease(&s.machine).await.unwrap();
}

/// Waits: a state reached answers at once; one never reached is a Timeout at the caller's deadline,
/// however low the server's cap on one wait.
async fn wait_contract(s: &Server) {
    s.first.wait_state(&s.machine, MachineState::Started, Duration::from_secs(5)).await.unwrap();
    let started = Instant::now();
    let e = s
        .first
        .wait_state(&s.machine, MachineState::Suspended, Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{}: {e}", s.name);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(10), "{}: {took:?}", s.name);
}

/// Destroy: done, and a machine already gone counts as done.
async fn destroy_contract(s: &Server) {
    s.first.destroy(&s.machine).await.unwrap();
    s.first.destroy(&s.machine).await.unwrap();
    let e = s.first.get(&s.machine).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}: {e}", s.name);
    s.first.wait_state(&s.machine, MachineState::Destroyed, Duration::from_secs(2)).await.unwrap();
}

async fn contract(mut s: Server) {
    leases_contract(&s).await;
    wait_contract(&s).await;
    destroy_contract(&s).await;
    if let Some(stop) = s.stop.take() {
        stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_meets_the_contract_of_the_fake_fly_api() {
    contract(fake_server().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_meets_the_same_contract_on_the_local_daemon() {
    let dir = tempfile::tempdir().unwrap();
    contract(local_server(dir.path()).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_longer_than_the_server_cap_is_a_loop_of_capped_waits() {
    let fake = fake_with_fleet(1).await;
    let fly = fly_platform(&fake.url, TOKEN);
    let id = fly.list().await.unwrap()[0].id.clone();
    // The fake's cap is 300 ms (Fly's 60 s, scaled): stop the machine after 1 s and wait 3 s for it.
    let stopper = fly_platform(&fake.url, TOKEN);
    let id2 = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let how = cutover::core::StopSpec { signal: "SIGINT".into(), timeout: Duration::from_secs(1) };
        stopper.stop(&id2, &how).await.unwrap();
    });
    fly.wait_state(&id, MachineState::Stopped, Duration::from_secs(3)).await.unwrap();
    let waits = fake.state.seen().iter().filter(|s| s.path.ends_with("/wait")).count();
    assert!(waits >= 3, "several capped waits made one long one: {waits}");
}

// ---- the binary: dry run, and the token in no output ------------------------------------------------

fn cutover(dir: &std::path::Path, args: &[&str], token: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .arg("--config")
        .arg(dir.join("fly.toml"))
        .env("CUTOVER_CACHE_DIR", support::cache_dir())
        .env("CUTOVER_STATE_DIR", dir.join("state"))
        .env("FLY_API_TOKEN", token)
        .env_remove("FLY_FLAPS_BASE_URL")
        .output()
        .expect("run cutover")
}

async fn cutover_async(
    dir: std::path::PathBuf,
    args: Vec<&'static str>,
    token: &'static str,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || cutover(&dir, &args, token)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_only_reads_and_says_what_fly_lacks() {
    let fake = fake_with_fleet(3).await;
    let dir = app_dir(&fake.url, "canary", "");
    let out = cutover_async(dir.path().to_path_buf(), vec!["deploy", "--dry-run"], TOKEN).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "Dry run",
        "flyapp on fly",
        "v1 (registry.fly.io/flyapp:deployment-1) -> v2",
        "canary",
        "ams",
        "iad",
        "weights",
        "stats",
        "connections",
        "leased before the first change",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let seen = fake.state.seen();
    assert!(!seen.is_empty() && seen.iter().all(|s| s.method == "GET"), "only GETs: {seen:?}");
    let out = cutover_async(dir.path().to_path_buf(), vec!["deploy", "--dry-run", "--json"], TOKEN).await;
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["target"]["version"], 2);
    assert_eq!(plan["groups"]["app"]["ams"]["machines"], 2);
    assert!(fake.state.seen().iter().all(|s| s.method == "GET"));
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_appears_in_any_output_log_error_or_event() {
    let fake = fake_with_fleet(2).await;
    let dir = app_dir(&fake.url, "rolling", "");
    let path = dir.path().to_path_buf();
    let runs = [
        (vec!["deploy", "--json", "-vv"], TOKEN),
        (vec!["deploy", "-vv"], TOKEN),
        (vec!["deploy", "--dry-run", "-vv"], TOKEN),
        (vec!["releases", "--json"], TOKEN),
        // A refused token: the error names what to do, not the token.
        (vec!["deploy", "--json", "-vv"], "fo1_ZZrefusedTOKENzz"),
        (vec!["deploy", "-vv"], "fo1_ZZrefusedTOKENzz"),
    ];
    for (args, token) in runs {
        let out = cutover_async(path.clone(), args.clone(), token).await;
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains(token), "{args:?} printed the token:\n{all}");
        assert!(!all.contains("ZZtoken") && !all.contains("ZZrefused"), "{args:?}:\n{all}");
        if token != TOKEN {
            assert_eq!(out.status.code(), Some(3), "{args:?}: {all}");
            assert!(all.contains("FLY_API_TOKEN"), "{args:?}: says what to do: {all}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        }
    }
    // Nor in anything kept on disk (the journal).
    for entry in walk(&path.join("state")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("ZZtoken") && !text.contains("ZZrefused"),
            "{} holds the token",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
