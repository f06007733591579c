//! Whole deploys on the fake through the driver: every built-in strategy through 5xx bursts, a
//! failing release put back, a second deployer refused, and leases refreshed and released.

use super::{APP, TOKEN, V1, V2, app, app_dir, deploy, fake_with_fleet, fly_platform, machines_of};

use cutover::core::events::Outcome;
use cutover::core::{Platform, Release};
use cutover::driver::DeployError;
use cutover::driver::lease::DeployLeases;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn every_builtin_strategy_deploys_through_5xx_bursts_and_releases_every_lease() {
    for strategy in ["immediate", "rolling", "bluegreen", "canary", "drain-then-destroy"] {
        let fake = fake_with_fleet(4).await;
        {
            let mut faults = fake.state.faults.lock().unwrap();
            faults.every = Some(9);
            faults.retry_after = Some(0);
        }
        let dir = app_dir(app(&fake.url, strategy));
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
        let dir = app_dir(app(&fake.url, strategy).set("deploy.wait_timeout", "1s"));
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
    let dir = app_dir(app(&fake.url, "rolling"));
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
