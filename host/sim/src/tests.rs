//! The simulator through its [`Platform`] handle: machines boot, fail, crash, drain and split
//! traffic as a scenario says, and the same seed gives the same fleet.

use crate::{Scenario, SimWorld};
use cutover_core::{CheckSpec, ErrorKind, MachineState, Platform, Release, ReleaseWeight};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn http_check() -> CheckSpec {
    CheckSpec {
        name: "health".into(),
        kind: cutover_core::CheckKind::Http {
            method: "GET".into(),
            path: "/health".into(),
            protocol: "http".into(),
            headers: vec![],
            tls_skip_verify: false,
        },
        grace_period: Duration::from_secs(1),
        interval: Duration::from_secs(15),
        timeout: Duration::from_secs(2),
        port: None,
    }
}

fn world(scenario: &str) -> Arc<SimWorld> {
    SimWorld::new(Scenario::parse(scenario).unwrap(), "app", "img:v1", vec![http_check()])
}

#[tokio::test(start_paused = true)]
async fn update_then_wait_brings_machine_up_on_new_release() {
    let w = world("[fleet]\nmachines = 2");
    let p = w.platform("app");
    let id = p.list().await.unwrap()[0].id.clone();
    let v2 = Release { version: 2, image: "img:v2".into() };
    p.update(&id, &v2).await.unwrap();
    assert_ne!(p.get(&id).await.unwrap().state, MachineState::Started);
    p.wait_state(&id, MachineState::Started, Duration::from_secs(60)).await.unwrap();
    p.wait_healthy(&id, Duration::from_secs(60)).await.unwrap();
    let m = p.get(&id).await.unwrap();
    assert_eq!(m.release, v2);
    assert!(m.is_serving());
}

#[tokio::test(start_paused = true)]
async fn unhealthy_image_fails_its_checks() {
    let w = world("[faults]\nunhealthy_images = [\"img:bad\"]");
    let p = w.platform("app");
    let id = p.list().await.unwrap()[0].id.clone();
    p.update(&id, &Release { version: 2, image: "img:bad".into() }).await.unwrap();
    let e = p.wait_healthy(&id, Duration::from_secs(300)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unhealthy, "{e}");
    assert!(e.message.contains("500"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_on_a_stopped_machine() {
    let w = world("[fleet]\nmachines = 1\nstopped = 1");
    let p = w.platform("app");
    let id = p.list().await.unwrap()[0].id.clone();
    let e = p.wait_state(&id, MachineState::Started, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn other_apps_machines_are_not_found() {
    let w = world("[fleet]\nneighbours = 1");
    let victim = w.snapshot("app-neighbour")[0].id.clone();
    let p = w.platform("app");
    let e = p.destroy(&victim).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(w.snapshot("app-neighbour").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn scheduled_crash_fails_the_machine() {
    let w = world("[[faults.crash]]\nmachine = 0\nat = \"10s\"");
    let p = w.platform("app");
    let id = p.list().await.unwrap().into_iter().find(|m| m.name.ends_with("-0")).unwrap().id;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(p.get(&id).await.unwrap().state, MachineState::Failed);
}

#[tokio::test(start_paused = true)]
async fn volumes_stay_with_their_machine() {
    let w = world("[fleet]\nmachines = 2\nvolumes = true");
    let p = w.platform("app");
    let source = p.list().await.unwrap()[0].clone();
    assert_eq!(source.volumes.len(), 1);
    let green =
        p.clone_from(&source.id, &Release { version: 2, image: "img:v2".into() }, false).await.unwrap();
    assert!(green.volumes.is_empty(), "a volume attaches to one machine only");
    assert!(green.cordoned, "not routable until uncordoned");
}

#[tokio::test(start_paused = true)]
async fn cordoned_machines_drain_their_connections() {
    let w = world("[fleet]\nmachines = 1\n[traffic]\nconnections = 3\nconnection_lifetime = [1000, 20000]");
    let p = w.platform("app");
    let id = p.list().await.unwrap()[0].id.clone();
    assert_eq!(p.connections(&id).await.unwrap(), 3);
    p.cordon(&id).await.unwrap();
    let mut last = 3;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open = p.connections(&id).await.unwrap();
        assert!(open <= last, "connections only close after a cordon");
        last = open;
    }
    assert_eq!(last, 0, "all closed after the longest lifetime");
    p.uncordon(&id).await.unwrap();
    assert_eq!(p.connections(&id).await.unwrap(), 3, "new connections once routable again");
    p.destroy(&id).await.unwrap();
    assert_eq!(w.cut_connections().len(), 1, "destroying a busy machine cuts its connections");
}

#[tokio::test(start_paused = true)]
async fn a_release_weighted_to_zero_drains_and_a_machine_born_there_holds_nothing() {
    let w = world("[fleet]\nmachines = 1\n[traffic]\nconnections = 3\nconnection_lifetime = [1000, 20000]");
    let p = w.platform("app");
    let blue = p.list().await.unwrap()[0].id.clone();
    let v2 = Release { version: 2, image: "img:v2".into() };
    // Green routable from its creation, at 0%: it never takes a connection, even once serving.
    p.set_weights(&[ReleaseWeight { version: 1, percent: 100 }, ReleaseWeight { version: 2, percent: 0 }])
        .await
        .unwrap();
    let green = p.clone_from(&blue, &v2, true).await.unwrap().id;
    p.wait_healthy(&green, Duration::from_secs(120)).await.unwrap();
    assert_eq!(p.connections(&green).await.unwrap(), 0);
    assert_eq!(p.connections(&blue).await.unwrap(), 3, "blue keeps its connections at 100%");
    // The switch: blue's release at 0% (unlisted) drains as a cordon would, still uncordoned.
    p.set_weights(&[ReleaseWeight { version: 2, percent: 100 }]).await.unwrap();
    assert_eq!(p.connections(&green).await.unwrap(), 3, "green takes connections once weighted in");
    let mut last = 3;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open = p.connections(&blue).await.unwrap();
        assert!(open <= last, "connections only close once the release has no share");
        last = open;
    }
    assert_eq!(last, 0, "all closed after the longest lifetime");
    p.set_weights(&[]).await.unwrap();
    assert_eq!(p.connections(&blue).await.unwrap(), 3, "new connections once by machine count again");
}

#[tokio::test(start_paused = true)]
async fn a_machine_put_in_rotation_only_at_zero_percent_holds_nothing() {
    let w = world("[fleet]\nmachines = 1\n[traffic]\nconnections = 3\nconnection_lifetime = [1000, 20000]");
    let p = w.platform("app");
    let blue = p.list().await.unwrap()[0].id.clone();
    let v2 = Release { version: 2, image: "img:v2".into() };
    // Started cordoned, pinned at 0%, then uncordoned: a bluegreen's green before its switch.
    let green = p.clone_from(&blue, &v2, false).await.unwrap().id;
    p.wait_healthy(&green, Duration::from_secs(120)).await.unwrap();
    p.set_weights(&[ReleaseWeight { version: 1, percent: 100 }, ReleaseWeight { version: 2, percent: 0 }])
        .await
        .unwrap();
    p.uncordon(&green).await.unwrap();
    assert_eq!(p.connections(&green).await.unwrap(), 0);
    p.destroy(&green).await.unwrap();
    assert!(w.cut_connections().is_empty(), "destroying it cuts nothing");
}

#[tokio::test(start_paused = true)]
async fn weights_split_traffic_and_stats_follow() {
    let w = world(
        "[fleet]\nmachines = 4\n[traffic]\nrps = 100\nerror_rate = 0.0\n[faults]\nerror_images = { \"img:v2\" = 0.5 }",
    );
    let p = w.platform("app");
    let ms = p.list().await.unwrap();
    let v2 = Release { version: 2, image: "img:v2".into() };
    let canary = p.clone_from(&ms[0].id, &v2, false).await.unwrap();
    p.wait_healthy(&canary.id, Duration::from_secs(120)).await.unwrap();
    p.uncordon(&canary.id).await.unwrap();
    // By machine count: 1 of 5.
    assert_eq!(p.stats(2, Duration::from_secs(10)).await.unwrap().requests, 200);
    p.set_weights(&[ReleaseWeight { version: 1, percent: 90 }, ReleaseWeight { version: 2, percent: 10 }])
        .await
        .unwrap();
    let canary_stats = p.stats(2, Duration::from_secs(10)).await.unwrap();
    assert_eq!(canary_stats.requests, 100);
    assert_eq!(canary_stats.errors, 50);
    assert_eq!(p.stats(1, Duration::from_secs(10)).await.unwrap().errors, 0);
    assert_eq!(p.weights().await.unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn manual_gates_follow_the_scenario() {
    let p = world("promote_after = \"30s\"").platform("app");
    let start = Instant::now();
    p.await_promotion("step-25", Duration::from_secs(60)).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(30));
    let e = p.await_promotion("step-25", Duration::from_secs(10)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "the operator is slower than the gate");
    let p = world("").platform("app");
    let e = p.await_promotion("step-25", Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "no operator: the journal's `cutover promote` answers");
    assert!(e.message.contains("promote_after"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_ids_and_latencies() {
    let a = world("seed = 9");
    let b = world("seed = 9");
    assert_eq!(a.snapshot("app"), b.snapshot("app"));
    assert_ne!(world("seed = 10").snapshot("app")[0].id, a.snapshot("app")[0].id);
}
