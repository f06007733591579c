//! A Machines API that lags, as Fly's can: for a while after an update, reads and waits that do not
//! name an instance still see the old one, `started` with passing checks. Waits must name the
//! instance the update returned, and checks must be the new instance's, or a strategy puts a machine
//! in rotation before its new release runs. The order is checked on the fake's own history.

use super::{APP, TOKEN, V1, V2, app, app_dir, deploy, fly_platform, machines_of};

use crate::support::fake_fly::{FakeFly, FakeOptions, Happened};
use cutover::core::events::Outcome;
use cutover::core::{MachineState, Platform, Release};
use std::time::{Duration, Instant};

/// A fake whose reads lag updates by `lag`, with `n` machines of APP on v1.
async fn lagging_fleet(n: usize, lag: Duration) -> FakeFly {
    let fake = FakeFly::start(FakeOptions { token: TOKEN.into(), lag, ..FakeOptions::default() }).await;
    for i in 0..n {
        fake.state.seed(APP, V1, 1, if i % 2 == 0 { "ams" } else { "iad" }, "app");
    }
    fake
}

/// Every time a machine was put in rotation, the instance it was on had already started and
/// passed its checks.
fn assert_no_rotation_before_passing(history: &[Happened], what: &str) {
    let mut uncordons = 0;
    for (i, h) in history.iter().enumerate() {
        if let Happened::Uncordoned { id, instance } = h {
            uncordons += 1;
            let passed = history[..i].iter().any(
                |e| matches!(e, Happened::Passed { id: pid, instance: pin } if pid == id && pin == instance),
            );
            assert!(
                passed,
                "{what}: {id} was put in rotation on instance {instance} before it passed: {history:#?}"
            );
        }
    }
    assert!(uncordons > 0, "{what}: nothing was put in rotation, so nothing was checked: {history:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_lags_and_only_a_wait_naming_the_new_instance_waits_for_it() {
    let lag = Duration::from_millis(400);
    let fake = lagging_fleet(1, lag).await;
    let platform = fly_platform(&fake.url, TOKEN);
    let client = platform.client();
    let id = machines_of(&fake, APP)[0].api.id.clone();
    let old = client.get(&id).await.unwrap().instance_id;
    platform.update(&id, &Release { version: 2, image: V2.into() }).await.unwrap();
    let new = fake
        .state
        .history()
        .into_iter()
        .find_map(|h| match h {
            Happened::Updated { instance, .. } => Some(instance),
            _ => None,
        })
        .expect("the update is in the history");
    assert_ne!(new, old);

    // The API as a naive client sees it: the old instance, started and passing, answers at once.
    let t = Instant::now();
    client.wait(&id, "started", Duration::from_secs(5)).await.unwrap();
    let read = client.get(&id).await.unwrap();
    assert!(t.elapsed() < lag / 2, "an unversioned wait is answered by the old instance");
    assert_eq!((read.instance_id.as_str(), read.state.as_str()), (old.as_str(), "started"));
    assert!(read.checks.iter().all(|c| c.status == "passing"));

    // Naming the new instance waits for it; the platform's view is honest all along.
    let view = platform.get(&id).await.unwrap();
    assert_eq!(
        view.state,
        MachineState::Replacing,
        "until the API reports the new instance, it is replacing"
    );
    assert!(!view.is_serving());
    client.wait_for(&id, "started", Some(&new), Duration::from_secs(5)).await.unwrap();
    assert!(
        fake.state.history().contains(&Happened::Passed { id: id.clone(), instance: new.clone() }),
        "the named wait returned once the new instance had started"
    );
    platform.wait_healthy(&id, Duration::from_secs(5)).await.unwrap();
    let after = client.get(&id).await.unwrap();
    assert_eq!(after.instance_id, new, "health passed on the new instance only");
    assert!(t.elapsed() >= lag, "health could not pass before the API stopped lagging");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_lagging_api_no_strategy_puts_a_machine_in_rotation_before_its_new_instance_passed() {
    for strategy in ["rolling", "bluegreen", "canary"] {
        let fake = lagging_fleet(4, Duration::from_millis(300)).await;
        let dir = app_dir(app(&fake.url, strategy));
        let (report, _) = deploy(&dir).await;
        let report = report.unwrap_or_else(|e| panic!("{strategy}: did not start: {e}"));
        assert_eq!(report.outcome, Outcome::Succeeded, "{strategy}: {:?}", report.error);
        assert_no_rotation_before_passing(&fake.state.history(), strategy);
        let machines = machines_of(&fake, APP);
        assert_eq!(machines.len(), 4, "{strategy}");
        for m in &machines {
            assert_eq!(m.api.config.image, V2, "{strategy}");
            assert_eq!(m.api.state, "started", "{strategy}");
            assert!(!m.api.cordoned, "{strategy}: in rotation at the end");
        }
        assert_eq!(report.fleet.serving, 4, "{strategy}: the report's own fleet read shows 4 serving");
    }
}

/// Trust, then verify: `immediate` returns as soon as Fly accepted its updates. On a lagging API the
/// deploy is reported only once the driver's own read shows the new release serving; a release that
/// never passes fails, naming its machines, though the strategy said it succeeded.
#[tokio::test(flavor = "multi_thread")]
async fn a_success_is_reported_only_once_the_drivers_own_read_shows_the_release_serving() {
    let fake = lagging_fleet(4, Duration::from_millis(200)).await;
    let dir = app_dir(app(&fake.url, "immediate"));
    let (report, _) = deploy(&dir).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.error);
    assert_eq!(report.fleet.by_version, [(2, 4)]);
    assert_eq!(report.fleet.serving, 4, "not 'Deployed v2: 4 on v2; 0/4 serving'");

    let fake = lagging_fleet(2, Duration::from_millis(200)).await;
    fake.state.faults.lock().unwrap().unhealthy_images.insert(V2.into());
    let dir = app_dir(app(&fake.url, "immediate").set("deploy.wait_timeout", "1s"));
    let (report, _) = deploy(&dir).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("the strategy reported success, but 2 machine(s) of v2"), "{error}");
    for m in machines_of(&fake, APP) {
        assert!(error.contains(&m.api.id), "names {}: {error}", m.api.id);
    }
    assert!(fake.state.live_leases().is_empty(), "leases are released after a failed verification");
}
