//! `cutover status`: before any deploy, after one (as text and as JSON), and of a deploy whose process
//! was killed while it waited at a manual gate.

use super::{canary_with_a_manual_gate, example};
use crate::support::{self, OutputExt};

use serde_json::Value;
use std::io::BufRead;

#[test]
fn status_after_a_deploy_shows_the_release_and_the_fleet() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    // Nothing recorded yet: a clear error, and no journal created by looking.
    let out = support::cutover(["status", "--config", config]).state(state).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let expected =
        format!("no deploys of hello-cutover recorded in {} yet; run `cutover deploy`", state.display());
    assert!(out.stderr_text().contains(&expected), "{}", out.text());
    assert!(!state.join("journal.db").exists(), "status created the journal");

    assert_eq!(
        support::cutover(["deploy", "--config", config, "--json"]).state(state).run().status.code(),
        Some(0)
    );
    let out = support::cutover(["status", "--config", config]).state(state).run();
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for line in [
        "App:      hello-cutover",
        "Platform: sim",
        "Latest:   #1 v2 (registry.fly.io/hello-cutover:v2), deploy from v1 with rolling: succeeded",
        "Fleet:    10 machine(s): 10 on v2; most run v2 (registry.fly.io/hello-cutover:v2)",
        "          10 serving, 0 cordoned, 0 stopped",
    ] {
        assert!(stdout.lines().any(|l| l == line), "no line `{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("Next:") && !stdout.contains("Error:"), "{stdout}");

    let help = support::cutover(["status", "--help"]).run().stdout_text();
    assert!(help.contains("interrupted") && help.contains("Exit codes"), "{help}");
    assert!(support::cutover(["--help"]).run().stdout_text().contains("status"));
}

#[test]
fn status_json_has_the_latest_release_and_the_fleet() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    assert_eq!(
        support::cutover(["deploy", "--config", config, "--json"]).state(state).run().status.code(),
        Some(0)
    );
    let out = support::cutover(["status", "--config", config, "--json"]).state(state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let s: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(s["app"], "hello-cutover");
    assert_eq!(s["platform"], "sim");
    assert_eq!(s["releases"], 1);
    let latest = &s["latest"];
    assert_eq!(latest["id"], 1);
    assert_eq!(latest["kind"], "deploy");
    assert_eq!(
        latest["target"],
        serde_json::json!({"version": 2, "image": "registry.fly.io/hello-cutover:v2"})
    );
    assert_eq!(latest["previous"]["version"], 1);
    assert_eq!(latest["strategy"], "rolling");
    assert_eq!(latest["status"], "succeeded");
    assert_eq!(latest["error"], Value::Null);
    assert_eq!(latest["waiting_gate"], Value::Null);
    let fleet = &s["fleet"];
    assert_eq!(fleet["machines"], 10);
    assert_eq!(fleet["by_version"], serde_json::json!([[2, 10]]));
    assert_eq!(
        (&fleet["serving"], &fleet["cordoned"], &fleet["stopped"]),
        (&10.into(), &0.into(), &0.into())
    );
    assert_eq!(fleet["current"]["version"], 2);
    assert_eq!((&s["fleet_error"], &s["advice"]), (&Value::Null, &Value::Null));
}

/// A deploy whose process is killed while it waits at a manual gate is `running` (waiting) while it
/// lives and `interrupted` once it is gone, and status then says how to go on or go back.
#[test]
fn status_of_an_interrupted_deploy_says_resume_or_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let config = canary_with_a_manual_gate().write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    let mut child = support::cutover(["deploy", "--config", config, "--json"])
        .state(&state)
        .spawn(std::process::Stdio::piped(), std::process::Stdio::null());
    let stdout = child.stdout.take().unwrap();
    let reached = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("waiting at manual gate"));
    if !reached {
        let _ = child.kill();
        panic!("the deploy never reached its manual gate");
    }
    let out = support::cutover(["status", "--config", config]).state(&state).run();
    let stdout = out.stdout_text();
    assert!(stdout.contains(&format!("with canary: running (process {})", child.id())), "{stdout}");
    assert!(
        stdout.contains("Waiting:  at manual gate `step-10`: `cutover promote` lets it go on"),
        "{stdout}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let out = support::cutover(["status", "--config", config]).state(&state).run();
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("deploy from v1 with canary: interrupted"), "{stdout}");
    assert!(!stdout.contains("Waiting:"), "an interrupted deploy waits at no gate: {stdout}");
    let next = format!("Next:     deploy #1 (v2) was interrupted: its process ({}) is gone", child.id());
    assert!(stdout.contains(&next), "{stdout}");
    assert!(
        stdout.contains(
            "`cutover resume` continues it; `cutover rollback` returns the app to v1, the release it started from."
        ),
        "{stdout}"
    );
    let s: Value = support::cutover(["status", "--config", config, "--json"]).state(&state).run().json();
    assert_eq!(s["latest"]["status"], "interrupted");
    assert!(s["advice"].as_str().unwrap().contains("`cutover resume` continues it"), "{s}");
}
