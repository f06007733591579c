//! The same client against both servers it talks to — the fake Fly API and the local platform's
//! daemon — held to one contract: leases, waits past the server's cap, destroy of a missing machine.

use super::{APP, TOKEN, V1, fake_with_fleet, fly_platform};

use cutover::core::{ErrorKind, MachineState, Platform, Release};
use cutover::local::LocalPlatform;
use cutover::local::daemon::fleet::AppSpec;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let mut info = None;
    for _ in 0..200 {
        if let Some(i) = cutover::local::daemon::DaemonInfo::read(&daemon_dir) {
            info = Some(i);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let info = info.expect("the daemon came up");
    let url = info.url.clone();
    let token = info.token.clone().expect("the daemon wrote its token");
    let spec = AppSpec {
        command: vec!["sleep".into(), "600".into()],
        cwd: dir.to_path_buf(),
        env: Default::default(),
        checks: vec![],
        port: 0,
        tcp: true,
        proxy: Default::default(),
        kill_signal: "SIGTERM".into(),
        kill_timeout_ms: 1000,
    };
    let first = Arc::new(LocalPlatform::connect(&info, APP, &spec).await.unwrap());
    let client = Some(first.client().clone());
    let second = Arc::new(LocalPlatform::connect(&info, APP, &spec).await.unwrap());
    let m = first.create_machine(&Release { version: 1, image: V1.into() }, "ams", "app").await.unwrap();
    first.wait_state(&m.id, MachineState::Started, Duration::from_secs(5)).await.unwrap();
    let shutdown = format!("{url}/cutover/v1/shutdown");
    Server {
        name: "local daemon",
        first,
        second,
        machine: m.id,
        machines_url: format!("{url}/v1/apps/{APP}/machines"),
        auth: Some(token.header_value().to_str().unwrap().to_string()),
        client,
        stop: Some(Box::new(move || {
            Box::pin(async move {
                let _ = reqwest::Client::new()
                    .post(shutdown)
                    .header("authorization", token.header_value())
                    .send()
                    .await;
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
