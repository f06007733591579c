//! The Machines API client on its own against the fake: transient errors retried (and
//! `Retry-After` honoured), creates made idempotent, tokens checked and never echoed, health read from
//! checks, and a wait longer than the server's cap made of capped waits.

use super::{APP, TOKEN, V2, fake_with_fleet, fly_platform, machines_of};

use cutover::core::{ErrorKind, MachineState, Platform, Release};
use std::time::{Duration, Instant};

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
