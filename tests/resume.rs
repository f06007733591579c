//! Crash safety, end to end: the `cutover` process is killed (SIGKILL) at every step of a deploy, for
//! every built-in strategy on the simulator, and then `cutover resume` (or `cutover rollback`) is run.
//! Every run must end with the fleet on one release, every machine serving, nothing orphaned, and a
//! journal that tells the whole story.
//!
//! "Every step" is every event the deploy journals: the process is killed just before the journal
//! writes event k, for k = 0, 1, … until a deploy is no longer killed. Each change is journaled as an
//! intent before it reaches the platform and as a call with its answer after, so this kills before
//! each change, and after each change but before its answer is on record. The simulator writes its
//! fleet through to the state directory on every change, as a real platform keeps its state whatever
//! happens to the client.

use crate::support::{self, Cutover, OutputExt, Toml};

use cutover::config::Config;
use cutover::core::events::{Event, EventKind, Outcome};
use cutover::core::{Machine, MachineState};
use cutover::driver::{Journal, ReleaseStatus, StateDir};
use cutover::sim::{SavedWorld, Scenario, SimWorld};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

const APP: &str = "crashy";
const MACHINES: usize = 3;
const STRATEGIES: [&str; 5] = ["immediate", "rolling", "bluegreen", "canary", "drain-then-destroy"];

/// The app's fly.toml but for its name, image and strategy.
const FLY: &str = r#"[build]
[deploy]
[[http_service.checks]]
  path = "/health"
  interval = "10s"
  timeout = "2s"
[cutover]
  platform = "sim"
[cutover.sim]
  scenario = "scenario.toml"
"#;

/// An app on the simulator: three machines in two regions, every built-in's defaults. Connections are
/// short-lived so drain-then-destroy's polling does not multiply the steps without adding any kind.
fn app(dir: &Path, strategy: &str) -> PathBuf {
    std::fs::write(
        dir.join("scenario.toml"),
        format!("seed = 7\n[fleet]\nmachines = {MACHINES}\n[traffic]\nconnection_lifetime = [200, 1500]\n"),
    )
    .unwrap();
    Toml::parse(FLY)
        .set("app", APP)
        .set("build.image", format!("registry.fly.io/{APP}:v2"))
        .set("deploy.strategy", strategy)
        .write(dir.join("fly.toml"))
}

/// `cutover ARGS --config CONFIG`, with the app's state beside its config.
fn in_app(config: &Path, args: &[&str]) -> Cutover {
    support::cutover(args).config(config).state(state_of(config))
}

fn state_of(config: &Path) -> PathBuf {
    config.parent().unwrap().join("state")
}

/// The fleet as the simulator keeps it in the state directory (at rest: boots and stops finished).
fn fleet(config: &Path) -> Vec<Machine> {
    let cfg = Config::load(config).unwrap();
    let scenario = Scenario::load(&config.parent().unwrap().join("scenario.toml")).unwrap();
    let saved =
        SavedWorld::read(&StateDir::at(state_of(config)).sim_fleet(APP)).unwrap().expect("a kept fleet");
    SimWorld::restore(scenario, saved, APP, cfg.checks).snapshot(APP)
}

/// One release, every machine on it serving, and no machine more than the app started with.
fn assert_whole(config: &Path, version: u64, context: &str) {
    let machines = fleet(config);
    assert_eq!(machines.len(), MACHINES, "{context}: machines orphaned or lost: {machines:#?}");
    for m in &machines {
        assert_eq!(m.release.version, version, "{context}: {} is on v{}", m.id, m.release.version);
        assert_eq!(m.state, MachineState::Started, "{context}: {} is {:?}", m.id, m.state);
        assert!(m.is_serving(), "{context}: {} is not serving: {m:#?}", m.id);
    }
}

/// The journal of a release tells the whole story: numbered without gaps, opened and closed, every
/// intent answered, and the resume on record.
fn assert_journal_complete(events: &[Event], outcome: Outcome, context: &str) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "{context}: events are numbered without gaps");
    }
    assert!(matches!(events[0].kind, EventKind::DeployStarted(_)), "{context}: {:?}", events[0].kind);
    let resumed = events.iter().filter(|e| matches!(e.kind, EventKind::Resumed { .. })).count();
    assert_eq!(resumed, 1, "{context}: one resume on record");
    match &events.last().unwrap().kind {
        EventKind::DeployFinished { outcome: o, .. } => assert_eq!(*o, outcome, "{context}"),
        other => panic!("{context}: the journal ends with {other:?}, not the deploy's end"),
    }
    for (i, e) in events.iter().enumerate() {
        if let EventKind::Intent { call } = &e.kind {
            let answered = events[i + 1..]
                .iter()
                .any(|later| matches!(&later.kind, EventKind::HostCall { call: c, .. } if c == call));
            assert!(answered, "{context}: intent #{} ({}) was never answered", e.seq, call.operation());
        }
    }
}

/// Kill a deploy at every step; after each, run `after` (resume or rollback) and check it. Returns the
/// number of steps (the events of an uninterrupted deploy).
fn at_every_step(strategy: &str, after: &dyn Fn(&Path, u64)) -> u64 {
    let mut k = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let config = app(dir.path(), strategy);
        let out = in_app(&config, &["deploy"]).kill_at_event(Some(k)).run();
        if out.status.signal() != Some(libc::SIGKILL) {
            // Killed at no step: k is past the end, and the deploy ran to its end.
            assert_eq!(out.status.code(), Some(0), "{strategy}: {}", out.text());
            let journal = Journal::open(&state_of(&config)).unwrap();
            assert_eq!(journal.event_count(1).unwrap(), k, "{strategy}: every event was a kill point");
            return k;
        }
        let journal = Journal::open(&state_of(&config)).unwrap();
        assert_eq!(journal.releases(APP).unwrap()[0].status, ReleaseStatus::Interrupted, "{strategy}@{k}");
        after(&config, k);
        k += 1;
    }
}

#[test]
fn a_deploy_killed_at_any_step_resumes_to_one_release() {
    std::thread::scope(|s| {
        let runs: Vec<_> = STRATEGIES
            .iter()
            .map(|&strategy| {
                s.spawn(move || {
                    let steps = at_every_step(strategy, &|config, k| {
                        let context = format!("{strategy} killed at event {k}");
                        let out = in_app(config, &["resume"]).run();
                        assert_eq!(out.status.code(), Some(0), "{context}: {}", out.text());
                        assert!(out.text().contains("==> Resumed at"), "{context}: {}", out.text());
                        assert!(out.text().contains("==> Deployed v2"), "{context}: {}", out.text());
                        assert_whole(config, 2, &context);
                        let journal = Journal::open(&state_of(config)).unwrap();
                        let releases = journal.releases(APP).unwrap();
                        assert_eq!(releases.len(), 1, "{context}: the resume continued release #1");
                        assert_eq!(releases[0].status, ReleaseStatus::Succeeded, "{context}");
                        assert_journal_complete(&journal.events(1).unwrap(), Outcome::Succeeded, &context);
                    });
                    (strategy, steps)
                })
            })
            .collect();
        for run in runs {
            let (strategy, steps) = run.join().expect("a strategy's crash runs panicked");
            assert!(steps > 10, "{strategy}: only {steps} steps; the deploy did not run");
        }
    });
}

#[test]
fn a_deploy_killed_at_any_step_rolls_back_to_the_previous_release() {
    std::thread::scope(|s| {
        let runs: Vec<_> = STRATEGIES
            .iter()
            .map(|&strategy| {
                s.spawn(move || {
                    at_every_step(strategy, &|config, k| {
                        let context = format!("{strategy} killed at event {k}, rolled back");
                        let out = in_app(config, &["rollback"]).run();
                        assert_eq!(out.status.code(), Some(0), "{context}: {}", out.text());
                        assert!(out.text().contains("==> Rolled back to v1"), "{context}: {}", out.text());
                        assert_whole(config, 1, &context);
                        // The interrupted deploy is closed: undone by its strategy (failed, aborted),
                        // or, when it was past its last change, finished and then rolled back by a
                        // rollback release of its own. Nothing is left interrupted.
                        let journal = Journal::open(&state_of(config)).unwrap();
                        let releases = journal.releases(APP).unwrap();
                        let first = &releases[0];
                        let outcome = match first.status {
                            ReleaseStatus::Failed => {
                                let error = first.error.as_deref().unwrap_or_default();
                                assert!(error.contains("aborted: `cutover rollback`"), "{context}: {error}");
                                Outcome::Failed
                            }
                            ReleaseStatus::Succeeded => {
                                assert_eq!(releases.len(), 2, "{context}: a rollback release follows");
                                Outcome::Succeeded
                            }
                            other => panic!("{context}: deploy #1 is left {other:?}"),
                        };
                        assert_journal_complete(&journal.events(1).unwrap(), outcome, &context);
                        for r in &releases[1..] {
                            assert_eq!(r.status, ReleaseStatus::Succeeded, "{context}: {r:?}");
                            assert_eq!(r.target.version, 1, "{context}: {r:?}");
                        }
                    })
                })
            })
            .collect();
        for run in runs {
            run.join().expect("a strategy's crash runs panicked");
        }
    });
}

#[test]
fn a_deploy_that_cannot_be_resumed_says_why_and_what_the_fleet_is() {
    let dir = tempfile::tempdir().unwrap();
    let config = app(dir.path(), "bluegreen");

    let out = in_app(&config, &["resume"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.text().contains("no deploys of crashy are recorded"), "{}", out.text());

    // A strategy from a file, killed once green exists (event 9: the clones made, not yet answered).
    let wasm = dir.path().join("strategy.wasm");
    std::fs::write(&wasm, support::builtin("bluegreen")).unwrap();
    let strategy = wasm.to_str().unwrap();
    let out = in_app(&config, &["deploy", "--strategy", strategy]).kill_at_event(Some(9)).run();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{}", out.text());

    // Another component at that path cannot replay what this one did.
    std::fs::write(&wasm, support::builtin("rolling")).unwrap();
    let out = in_app(&config, &["resume"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let msg = out.text();
    assert!(msg.contains("cannot resume deploy #1 of crashy (v2, bluegreen)"), "{msg}");
    assert!(msg.contains("is not the component that ran it"), "{msg}");
    assert!(msg.contains("the fleet now: 6 machine(s): 3 on v2, 3 on v1; 3 serving, 3 cordoned"), "{msg}");
    assert!(msg.contains("run `cutover rollback`"), "{msg}");

    // With the original back, it resumes; then there is nothing left to resume.
    std::fs::write(&wasm, support::builtin("bluegreen")).unwrap();
    let out = in_app(&config, &["resume"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.text().contains("reconciled `machines.clone-from"), "{}", out.text());
    assert_whole(&config, 2, "resumed with the original component");
    let out = in_app(&config, &["resume"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.text().contains("#1 (v2), succeeded: there is nothing to resume"), "{}", out.text());
}

/// Killed once bluegreen has pinned the split (v1 100%, v2 0%) and put green in rotation, the fleet
/// has six machines started, passing and uncordoned, but only blue takes connections: `cutover status`
/// counts three serving and shows the split, and `cutover resume` finishes the switch and clears it.
#[test]
fn status_counts_a_release_weighted_to_zero_as_not_serving_and_shows_the_split() {
    let status = |config: &Path| -> serde_json::Value { in_app(config, &["status", "--json"]).run().json() };
    for k in 9..60 {
        let dir = tempfile::tempdir().unwrap();
        let config = app(dir.path(), "bluegreen");
        let out = in_app(&config, &["deploy"]).kill_at_event(Some(k)).run();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "bluegreen ended before green went in: {}",
            out.text()
        );
        let s = status(&config);
        let fleet = &s["fleet"];
        let pinned = fleet["weights"]
            == serde_json::json!([{"version": 1, "percent": 100}, {"version": 2, "percent": 0}]);
        if !(pinned && fleet["machines"] == 6 && fleet["cordoned"] == 0) {
            continue;
        }
        assert_eq!(fleet["serving"], 3, "green at 0% takes nothing (killed at event {k}): {s}");
        let text = in_app(&config, &["status"]).run().stdout_text();
        assert!(text.contains("new connections split by release: v1 100%, v2 0%"), "{text}");
        assert!(text.contains("3 serving, 0 cordoned"), "{text}");

        let out = in_app(&config, &["resume"]).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        assert_whole(&config, 2, &format!("bluegreen killed at event {k} with the split pinned, resumed"));
        let s = status(&config);
        assert_eq!(s["fleet"]["weights"], serde_json::json!([]), "{s}");
        assert_eq!(s["fleet"]["serving"], 3, "{s}");
        return;
    }
    panic!("no kill point left the split pinned with green in rotation");
}
