//! The releases a deploy journals, `cutover rollback` (to the previous release, to one named with
//! `--to`, and back to the blue fleet a bluegreen deploy kept) and `cutover promote`.

use super::{canary_with_a_manual_gate, example, finished, scenario};
use crate::support::{self, OutputExt, Toml};

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// `cutover releases --json` for the example app.
fn releases(state: &Path, config: &str) -> Vec<Value> {
    let out = support::cutover(["releases", "--config", config, "--json"]).state(state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    out.json()
}

/// The example app deployed by bluegreen keeping blue (stopped) for a rollback.
fn retained_bluegreen() -> Toml {
    Toml::example_app().set("deploy.strategy", "bluegreen").set("cutover.params.retain_blue", true)
}

#[test]
fn releases_are_journaled_and_rollback_returns_to_the_previous_one() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    let image = "registry.fly.io/hello-cutover:v3";
    let out = support::cutover(["releases", "--config", config]).state(state).run();
    assert!(out.stdout_text().contains("no releases recorded"), "{}", out.text());

    assert_eq!(
        support::cutover(["deploy", "--config", config, "--json"]).state(state).run().status.code(),
        Some(0)
    );
    // The second deploy starts from the fleet the first one left (kept in the state directory).
    let out = support::cutover(["deploy", "--config", config, "--image", image, "--json"]).state(state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    assert_eq!(evs[0]["previous"]["version"], 2);
    assert_eq!(finished(&evs)["fleet"]["by_version"], serde_json::json!([[3, 10]]));

    let out = support::cutover(["rollback", "--config", config, "--json"]).state(state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    assert_eq!(evs[0]["rollback"], true);
    assert_eq!(evs[0]["target"]["version"], 2);
    assert_eq!(evs[0]["target"]["image"], "registry.fly.io/hello-cutover:v2");
    assert_eq!(finished(&evs)["fleet"]["by_version"], serde_json::json!([[2, 10]]));

    let rs = releases(state, config);
    let summary: Vec<(i64, &str, &str, &str)> = rs
        .iter()
        .map(|r| {
            (
                r["target"]["version"].as_i64().unwrap(),
                r["kind"].as_str().unwrap(),
                r["strategy"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "deploy", "rolling", "succeeded"),
            (3, "deploy", "rolling", "succeeded"),
            (2, "rollback", "rolling", "succeeded")
        ]
    );
    assert!(rs.iter().all(|r| r["duration_ms"].as_i64().unwrap() > 0), "{rs:?}");
    let table = support::cutover(["releases", "--config", config]).state(state).run().stdout_text();
    assert!(table.contains("rollback") && table.contains("succeeded"), "{table}");

    // An unknown release is refused before anything changes; a known one is reachable with --to.
    let out = support::cutover(["rollback", "--config", config, "--to", "v9"]).state(state).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr_text().contains("v9 is not a release cutover knows"), "{}", out.text());
    let out = support::cutover(["rollback", "--config", config, "--to", "1", "--json"]).state(state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(finished(&out.json_lines())["fleet"]["by_version"], serde_json::json!([[1, 10]]));
    // A new deploy never reuses a version number, even after rolling back.
    let out = support::cutover(["deploy", "--config", config, "--json"]).state(state).run();
    assert_eq!(out.json_lines()[0]["target"]["version"], 4);
}

#[test]
fn rollback_after_a_retained_bluegreen_switches_back_to_the_kept_machines() {
    let dir = tempfile::tempdir().unwrap();
    let config = retained_bluegreen().write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");

    let out = support::cutover(["deploy", "--config", config, "--json"]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    let blue: Vec<Value> = evs
        .iter()
        .find(|e| e["call"] == "machines.list")
        .map(|e| e["reply"]["machines"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect())
        .unwrap();
    assert_eq!(finished(&evs)["fleet"]["by_version"], serde_json::json!([[1, 10], [2, 10]]), "blue kept");

    let out = support::cutover(["rollback", "--config", config, "--json"]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    assert!(!evs.iter().any(|e| e["call"] == "machines.clone-from"), "a switch, not a redeploy");
    let started: Vec<Value> = evs
        .iter()
        .filter(|e| e["event"] == "host_call" && e["call"] == "machines.start")
        .flat_map(|e| e["ids"].as_array().unwrap().clone())
        .collect();
    let mut started_sorted = started.clone();
    started_sorted.sort_by_key(|v| v.to_string());
    let mut blue_sorted = blue.clone();
    blue_sorted.sort_by_key(|v| v.to_string());
    assert_eq!(started_sorted, blue_sorted, "the kept blue machines were started");
    let end = finished(&evs);
    assert_eq!(end["fleet"]["serving"], 10);
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10], [2, 10]]), "v2 kept in turn");
    let uncordoned: Vec<Value> = evs
        .iter()
        .filter(|e| e["event"] == "host_call" && e["call"] == "traffic.uncordon")
        .flat_map(|e| e["ids"].as_array().unwrap().clone())
        .collect();
    assert_eq!(uncordoned.len(), 10);
    assert!(uncordoned.iter().all(|id| blue.contains(id)), "traffic went back to the kept machines");
}

#[test]
fn a_switch_back_that_fails_leaves_the_kept_machines_stopped_not_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let config = retained_bluegreen().set("deploy.wait_timeout", "1m").write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    assert_eq!(
        support::cutover(["deploy", "--config", config, "--json"]).state(&state).run().status.code(),
        Some(0)
    );

    // Same fleet, but v1 now takes ten minutes to boot: the kept machines cannot be ready in time.
    let slow = Toml::read(scenario("happy.toml"))
        .set("faults.slow_images", BTreeMap::from([("registry.fly.io/hello-cutover:v1", "10m")]))
        .write(dir.path().join("slow-v1.toml"));
    let out =
        support::cutover(["rollback", "--config", config, "--scenario", slow.to_str().unwrap(), "--json"])
            .state(&state)
            .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let evs = out.json_lines();
    assert!(!evs.iter().any(|e| e["call"] == "machines.destroy"), "nothing destroyed");
    let end = finished(&evs);
    assert!(end["error"].as_str().unwrap().contains("did not start"), "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10], [2, 10]]));
    assert_eq!(end["fleet"]["serving"], 10, "v2 still serving");
    let restopped = evs
        .iter()
        .filter(|e| e["event"] == "host_call" && e["call"] == "machines.stop")
        .flat_map(|e| e["ids"].as_array().unwrap().clone())
        .count();
    assert_eq!(restopped, 10, "the kept machines went back to stopped");
    let rs = releases(&state, config);
    assert_eq!(rs.last().unwrap()["status"], "failed");
    assert_eq!(rs.last().unwrap()["kind"], "rollback");
}

#[test]
fn promote_lets_a_canary_waiting_at_a_manual_gate_go_on() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    let out = support::cutover(["promote", "--config", config]).state(state).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr_text().contains("no deploy of hello-cutover is running"), "{}", out.text());

    // A canary with a manual gate after the 10% step, and no simulated operator: it waits for us.
    let dir = tempfile::tempdir().unwrap();
    let own = canary_with_a_manual_gate().write(dir.path().join("fly.toml"));
    let own = own.to_str().unwrap();
    let mut child = support::cutover(["deploy", "--config", own, "--json"])
        .state(state)
        .spawn(std::process::Stdio::piped(), std::process::Stdio::piped());
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut lines = Vec::new();
    let reached = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(line) => {
                let waiting = line.contains("waiting at manual gate");
                lines.push(line);
                if waiting {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !reached {
        let _ = child.kill();
        panic!("the deploy never reached its manual gate: {lines:?}");
    }
    // The deploy is listed as waiting; promote names the gate it promoted.
    let listed = releases(state, own);
    assert_eq!(listed.last().unwrap()["status"], "running");
    let waiting_at = listed.last().unwrap()["waiting_gate"].clone();
    assert_eq!(waiting_at, "step-10");
    // A second deploy of the app meanwhile is refused at once, naming the one that runs; it changes
    // nothing and leaves no record.
    let started = std::time::Instant::now();
    let out = support::cutover(["deploy", "--config", own]).state(state).run();
    assert_eq!(out.status.code(), Some(3), "{}", out.text());
    let holder = format!("in process {}", child.id());
    assert!(
        out.stderr_text().contains("another deploy of hello-cutover is running")
            && out.stderr_text().contains(&holder),
        "{}",
        out.text()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "fails fast");
    assert_eq!(releases(state, own).len(), listed.len(), "the refused deploy is not recorded");
    let out = support::cutover(["promote", "--config", own]).state(state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("promoted gate `step-10`"), "{}", out.text());

    let status = child.wait().unwrap();
    lines.extend(rx.iter());
    assert_eq!(status.code(), Some(0), "{lines:?}");
    let end: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(end["outcome"], "succeeded");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 10]]));
    assert!(lines.iter().any(|l| l.contains("manual gate `step-10` promoted")));
    assert_eq!(releases(state, own).last().unwrap()["status"], "succeeded");
}

#[test]
fn abort_fails_the_gate_a_canary_waits_at_and_the_canary_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let own = canary_with_a_manual_gate().write(dir.path().join("fly.toml"));
    let own = own.to_str().unwrap();
    let out = support::cutover(["abort", "--config", own]).state(&state).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr_text().contains("no deploy of hello-cutover is running"), "{}", out.text());

    let mut child = support::cutover(["deploy", "--config", own, "--json"])
        .state(&state)
        .spawn(std::process::Stdio::piped(), std::process::Stdio::piped());
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let waiting = line.contains("waiting at manual gate");
        seen.push(line);
        if waiting {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.contains("waiting at manual gate")), "{seen:?}");
    let out = support::cutover(["abort", "--config", own]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("at manual gate `step-10`"), "{}", out.text());

    seen.extend(lines.map(|l| l.unwrap()));
    assert_eq!(child.wait().unwrap().code(), Some(1), "an aborted deploy failed: {seen:?}");
    let end: Value = serde_json::from_str(seen.last().unwrap()).unwrap();
    assert_eq!(end["outcome"], "failed");
    assert!(
        end["error"].as_str().unwrap().contains("aborted at manual gate `step-10` (`cutover abort`)"),
        "{end}"
    );
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10]]), "the canary was undone");
    assert_eq!(releases(&state, own).last().unwrap()["status"], "failed");
}
