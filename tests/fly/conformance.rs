//! Fly's own machine shapes (superfly/fly-go's `machine_types.go`), served by the fake: a machine on
//! a host Fly cannot reach comes with `config: null`, `incomplete_config` and `host_status =
//! "unreachable"`. Listing it works; it is read from its partial config (never as a machine without
//! an image); the plan names it; and a deploy refuses before changing anything, naming it. The JSON
//! fixtures written from fly-go's types (`fixtures/`) are read by the unit tests of
//! `cutover-machines-api`; here the same shapes go over HTTP.

use super::binary::with_token;
use super::{APP, TOKEN, V1, app, app_dir, deploy, fake_with_fleet, fly_platform, machines_of};
use crate::support::OutputExt;

use cutover::core::Platform;
use cutover::driver::DeployError;
use cutover::machines_api::{ApiMachine, host_status_of};

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_on_an_unreachable_host_is_listed_named_in_the_plan_and_stops_the_deploy() {
    let fake = fake_with_fleet(3).await;
    let lost = machines_of(&fake, APP)[1].api.id.clone();
    fake.state.make_unreachable(&lost);

    // Served as Fly serves it, and read from its partial config.
    let platform = fly_platform(&fake.url, TOKEN);
    let raw: Vec<serde_json::Value> = platform
        .client()
        .http()
        .get(platform.client().url(""))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wire = raw.iter().find(|m| m["id"] == lost.as_str()).unwrap();
    assert!(wire["config"].is_null() && wire["host_status"] == "unreachable", "{wire}");
    assert_eq!(wire["incomplete_config"]["image"], V1);
    let machines = platform.list().await.expect("a machine with config: null does not break list");
    assert_eq!(machines.len(), 3);
    let m = machines.iter().find(|m| m.id == lost).unwrap();
    assert_eq!((m.release.version, m.release.image.as_str()), (1, V1), "read from incomplete_config");
    assert_eq!(host_status_of(m), Some("unreachable"));
    assert!(!m.is_serving());
    let api: ApiMachine = serde_json::from_value(wire.clone()).unwrap();
    assert!(!api.is_reachable());

    // The plan names it.
    let dir = app_dir(app(&fake.url, "bluegreen"));
    let out = with_token(dir.path(), &["deploy", "--dry-run"], TOKEN).run_async().await;
    let stdout = out.stdout_text();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", out.stderr_text());
    assert!(stdout.contains(&format!("unreachable {lost} (unreachable)")), "{stdout}");
    assert!(stdout.contains("the deploy would refuse"), "{stdout}");
    let plan: serde_json::Value =
        with_token(dir.path(), &["deploy", "--dry-run", "--json"], TOKEN).run_async().await.json();
    assert_eq!(plan["unreachable"], serde_json::json!([format!("{lost} (unreachable)")]));

    // The deploy stops before changing anything, naming it; the binary exits 3 (the platform's fault).
    let (result, _) = deploy(&dir).await;
    let Err(DeployError::Platform { message, .. }) = result else {
        panic!("expected a refusal, got {result:?}")
    };
    assert!(message.contains(&lost) && message.contains("cannot reach"), "{message}");
    let out = with_token(dir.path(), &["deploy"], TOKEN).run_async().await;
    assert_eq!(out.status.code(), Some(3), "{}", out.text());
    assert!(out.stderr_text().contains(&lost), "{}", out.stderr_text());
    let changes: Vec<_> = fake.state.seen().into_iter().filter(|s| s.method != "GET").collect();
    assert!(changes.is_empty(), "nothing was changed, not even leased: {changes:?}");
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_refuses_to_change_a_machine_on_an_unreachable_host() {
    let fake = fake_with_fleet(1).await;
    let id = machines_of(&fake, APP)[0].api.id.clone();
    fake.state.make_unreachable(&id);
    let platform = fly_platform(&fake.url, TOKEN);
    let target = cutover::core::Release { version: 2, image: super::V2.into() };
    let e = platform.update(&id, &target).await.unwrap_err();
    assert!(e.message.contains("cannot reach") && e.message.contains(&id), "{}", e.message);
    let e = platform.clone_from(&id, &target, false).await.unwrap_err();
    assert!(e.message.contains("cannot reach"), "{}", e.message);
    assert!(fake.state.seen().iter().all(|s| s.method == "GET"), "no partial config was written back");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_serves_events_and_image_refs_as_fly_does() {
    let fake = fake_with_fleet(1).await;
    let id = machines_of(&fake, APP)[0].api.id.clone();
    let platform = fly_platform(&fake.url, TOKEN);
    let client = platform.client();
    let m = client.get(&id).await.unwrap();
    assert_eq!(m.host_status, "ok");
    let r = m.image_ref.clone().expect("image_ref");
    assert_eq!(
        (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
        ("registry.fly.io", "flyapp", "deployment-1")
    );
    let kinds: Vec<&str> = m.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["start", "launch"], "newest first");
    assert_eq!(m.latest_exit_code(), None, "running: no exit since the latest start");
    let how = cutover::core::StopSpec { signal: "SIGINT".into(), timeout: std::time::Duration::from_secs(1) };
    platform.stop(&id, &how).await.unwrap();
    platform
        .wait_state(&id, cutover::core::MachineState::Stopped, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let m = client.get(&id).await.unwrap();
    assert_eq!(m.events[0].kind, "exit");
    assert_eq!(m.latest_exit_code(), Some(0), "the exit after the latest start");
}
