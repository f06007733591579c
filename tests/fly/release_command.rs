//! The release command on the fake Machines API, as flyctl runs it: a temporary machine in process
//! group `fly_app_release_command` (restart `no`, `auto_destroy`, no service registration, the size of
//! the app's largest machine or `release_command_vm`), waited on until destroyed, its exit code read
//! from its events; a failure or a timeout aborts with the fleet untouched; a killed `cutover` during
//! it is taken up by `cutover resume`, which runs it again.

use super::{APP, TOKEN, V1, V2, app, app_dir, deploy, fake_fly, fake_with_fleet, machines_of};
use crate::support::{self, OutputExt};

use cutover::core::events::{EventKind, Outcome};
use cutover::driver::{ReleaseStatus, StateDir};
use std::time::Duration;

fn with_release_command(url: &str) -> crate::support::Toml {
    app(url, "rolling")
        .set("deploy.release_command", "bin/migrate --all")
        .set("deploy.release_command_timeout", "5s")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_machine_runs_it_as_flyctl_does_before_any_change() {
    let fake = fake_with_fleet(2).await;
    let dir = app_dir(with_release_command(&fake.url));
    let (report, events) = deploy(&dir).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.error);

    let requests = fake.state.release_requests();
    assert_eq!(requests.len(), 1, "one temporary machine");
    let r = &requests[0];
    assert!(r.skip_service_registration && !r.skip_launch, "{r:?}");
    assert_eq!(r.config.image, V2, "the new release's image");
    assert_eq!(r.config.metadata["fly_process_group"], "fly_app_release_command");
    assert_eq!(r.config.metadata["fly_release_version"], "2");
    assert_eq!(r.config.env["RELEASE_COMMAND"], "1");
    assert_eq!(r.config.rest["restart"]["policy"], "no");
    assert_eq!(r.config.rest["auto_destroy"], true);
    assert_eq!(r.config.rest["init"]["cmd"], serde_json::json!(["bin/migrate", "--all"]));
    assert!(!r.config.rest.contains_key("services") && !r.config.rest.contains_key("checks"), "{r:?}");
    assert_eq!(
        r.config.rest["guest"],
        serde_json::json!({"cpu_kind": "shared", "cpus": 2, "memory_mb": 512})
    );

    // Gone afterwards: destroyed, in no list, and no app machine is on it.
    let gone = fake.state.release_machines_gone();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].state, "destroyed");
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.metadata["fly_process_group"] == "app"));
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V2));

    // It ran before the first change, and waited for started, then destroyed.
    let evs = events.events();
    let end = evs
        .iter()
        .position(|e| matches!(e.kind, EventKind::ReleaseCommandFinished { exit_code: Some(0), .. }));
    let change = evs.iter().position(|e| matches!(e.kind, EventKind::Intent { .. }));
    assert!(end.unwrap() < change.unwrap(), "{evs:#?}");
    let id = &gone[0].id;
    let waits: Vec<String> = fake
        .state
        .seen()
        .iter()
        .filter(|s| s.path.contains(&format!("{id}/wait")))
        .map(|s| s.path.clone())
        .collect();
    assert!(!waits.is_empty(), "the machine was waited on");
    let leased = fake.state.seen().iter().any(|s| s.path.ends_with(&format!("{id}/lease")));
    assert!(!leased, "not leased, as flyctl makes it: it may be gone before a lease could be taken");
    let first_update = fake.state.seen().iter().position(|s| {
        s.method == "POST" && s.path.ends_with(&format!("machines/{}", machines_of(&fake, APP)[0].api.id))
    });
    let create = fake.state.seen().iter().position(|s| s.method == "POST" && s.path.ends_with("/machines"));
    assert!(create < first_update, "created before any update");
}

#[tokio::test(flavor = "multi_thread")]
async fn its_size_follows_the_largest_machine_or_release_command_vm() {
    let fake = fake_with_fleet(2).await;
    // One larger machine: its guest is copied.
    let big = fake.state.seed(APP, V1, 1, "ams", "app");
    fake.state.set_guest(&big, serde_json::json!({"cpu_kind": "performance", "cpus": 2, "memory_mb": 4096}));
    let dir = app_dir(with_release_command(&fake.url));
    let (report, _) = deploy(&dir).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    assert_eq!(fake.state.release_requests()[0].config.rest["guest"]["memory_mb"], 4096);

    let fake = fake_with_fleet(1).await;
    let dir =
        app_dir(with_release_command(&fake.url).set("deploy.release_command_vm.size", "performance-1x"));
    let (report, _) = deploy(&dir).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    assert_eq!(
        fake.state.release_requests()[0].config.rest["guest"],
        serde_json::json!({"cpu_kind": "performance", "cpus": 1, "memory_mb": 2048})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_zero_exit_or_a_timeout_aborts_with_the_fleet_untouched() {
    let fake = fake_with_fleet(2).await;
    fake.state.release.lock().unwrap().exit_code = 3;
    let dir = app_dir(with_release_command(&fake.url));
    let (report, _) = deploy(&dir).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("release command exited with code 3"), "{error}");
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1 && m.api.state == "started"));
    assert!(
        fake.state
            .seen()
            .iter()
            .all(|s| !(s.method == "POST" && s.path.contains("/machines/") && !s.path.contains("lease"))),
        "no machine was changed"
    );
    assert_eq!(fake.state.release_machines_gone().len(), 1);

    let fake = fake_with_fleet(2).await;
    fake.state.release.lock().unwrap().run = Duration::from_secs(30);
    let dir = app_dir(with_release_command(&fake.url).set("deploy.release_command_timeout", "1s"));
    let (report, _) = deploy(&dir).await;
    let error = report.unwrap().error.unwrap();
    assert!(error.contains("did not finish within 1s"), "{error}");
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
    let left: Vec<_> = machines_of(&fake, APP)
        .into_iter()
        .filter(|m| m.api.config.metadata["fly_process_group"] == "fly_app_release_command")
        .collect();
    assert!(left.is_empty(), "the timed-out machine was destroyed: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cutover_killed_during_it_is_resumed_by_running_it_again() {
    let fake = fake_with_fleet(2).await;
    fake.state.release.lock().unwrap().run = Duration::from_millis(300);
    let dir = app_dir(with_release_command(&fake.url));
    let cutover = |args: &[&str]| {
        support::cutover(args)
            .config(dir.path().join("fly.toml"))
            .state(dir.path().join("state"))
            .env("FLY_API_TOKEN", TOKEN)
            .env_remove("FLY_FLAPS_BASE_URL")
    };
    // Event 0 starts the deploy, 1 the release command, 2 its note; killed before its end (3).
    let out = cutover(&["deploy"]).kill_at_event(Some(3)).run_async().await;
    assert_eq!(out.status.code(), None, "killed: {}", out.text());
    let journal = StateDir::at(dir.path().join("state")).journal().unwrap();
    let release = journal.releases(APP).unwrap().pop().unwrap();
    assert_eq!(release.status, ReleaseStatus::Interrupted);
    let events = journal.events(release.id).unwrap();
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::ReleaseCommandStarted { .. })), "{events:#?}");
    assert!(
        !events.iter().any(|e| matches!(e.kind, EventKind::ReleaseCommandFinished { .. })),
        "{events:#?}"
    );
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1), "nothing changed yet");

    let out = cutover(&["resume"]).run_async().await;
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("again: the previous process died while it ran"), "{}", out.text());
    assert_eq!(fake.state.release_requests().len(), 2, "run again");
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V2));
    let release = journal.releases(APP).unwrap().pop().unwrap();
    assert_eq!(release.status, ReleaseStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_gone_before_the_wait_is_read_from_its_events() {
    // It ran and was destroyed before the wait for `started`: that wait's 404 is not an error, and
    // the exit code still comes from the destroyed machine's events.
    for (code, outcome) in [(0, Outcome::Succeeded), (3, Outcome::Failed)] {
        let fake = fake_with_fleet(1).await;
        *fake.state.release.lock().unwrap() =
            fake_fly::ReleaseBehaviour { instant: true, exit_code: code, ..Default::default() };
        let dir = app_dir(with_release_command(&fake.url));
        let (report, _) = deploy(&dir).await;
        let report = report.unwrap();
        assert_eq!(report.outcome, outcome, "exit {code}: {:?}", report.error);
        if code != 0 {
            let error = report.error.unwrap();
            assert!(error.contains("release command exited with code 3"), "{error}");
            assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
        }
        let id = &fake.state.release_machines_gone()[0].id;
        let waited = fake.state.seen().iter().any(|s| s.path.ends_with(&format!("{id}/wait")));
        assert!(waited, "the 404 came from a wait");
    }
}
