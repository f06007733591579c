//! Deploys on the simulator through the binary: JSON events and the human output, a failing release,
//! fleets of 1,000 and 10,000 machines, a strategy from a file and one that crashes.

use super::{example, finished, scenario};
use crate::support::{self, OutputExt};

use serde_json::Value;

#[test]
fn rolling_deploy_of_ten_machines_succeeds() {
    let out = support::cutover(["deploy", "--config", example().to_str().unwrap(), "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    assert_eq!(evs[0]["event"], "deploy_started");
    assert_eq!(evs[0]["strategy"], "rolling");
    assert_eq!(evs[0]["machines"], 10);
    let end = finished(&evs);
    assert_eq!(end["outcome"], "succeeded");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 10]]));
    assert_eq!(end["fleet"]["serving"], 10);
    // The roll is one pipeline whose steps update its machines.
    let batch = evs.iter().find(|e| e["call"] == "machines.pipeline").expect("host calls are in the stream");
    assert!(batch["steps"].as_array().unwrap().iter().any(|s| s["step"] == "update"), "{batch}");
}

#[test]
fn human_output_shows_phases_and_a_summary() {
    let out = support::cutover(["deploy", "--config", example().to_str().unwrap()]).run();
    assert_eq!(out.status.code(), Some(0));
    let stdout = out.stdout_text();
    assert!(stdout.contains("==> Deploying hello-cutover v1 -> v2"), "{stdout}");
    assert!(stdout.contains("--> app: 10 machine(s), 4 at a time"), "{stdout}");
    assert!(stdout.contains("==> Deployed v2"), "{stdout}");
    assert!(stdout.contains("10 on v2; 10/10 serving"), "{stdout}");
}

#[test]
fn failing_release_exits_1_and_rolls_back_to_v1() {
    let out = support::cutover([
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--scenario",
        &scenario("failing-release.toml"),
        "--json",
    ])
    .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let evs = out.json_lines();
    let end = finished(&evs);
    assert_eq!(end["outcome"], "failed");
    let error = end["error"].as_str().unwrap();
    assert!(error.contains("unhealthy") && error.contains("500"), "{error}");
    assert!(error.contains("rolled 4 machine(s) back to v1"), "{error}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10]]));
    assert_eq!(end["fleet"]["serving"], 10);
}

#[test]
fn ten_thousand_machines_deploy() {
    let out = support::cutover([
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--scenario",
        &scenario("large.toml"),
    ])
    .run();
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("10000 on v2; 10000/10000 serving"), "{stdout}");
}

#[test]
fn strategy_from_a_wasm_path_is_used() {
    let wasm = support::guest_target().join("wasm32-wasip2/release/rolling.wasm");
    let out = support::cutover([
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--strategy",
        wasm.to_str().unwrap(),
        "--json",
    ])
    .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(finished(&out.json_lines())["outcome"], "succeeded");
}

#[test]
fn a_crashing_strategy_exits_1_with_its_panic() {
    support::guest("trap");
    let wasm = support::guest_target().join("wasm32-wasip2/release/trap.wasm");
    let out = support::cutover([
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--strategy",
        wasm.to_str().unwrap(),
    ])
    .run();
    let stdout = out.stdout_text();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("the strategy crashed") && stdout.contains("deliberate bug"), "{stdout}");
    assert!(stdout.contains("10 on v1; 10/10 serving"), "the fleet is untouched: {stdout}");
}

#[test]
fn every_built_in_deploys_a_thousand_machines() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("thousand.toml");
    std::fs::write(
        &scenario,
        "seed = 5\nconcurrency = 64\n[fleet]\nmachines = 1000\nregions = [\"ams\", \"iad\", \"sin\"]\n",
    )
    .unwrap();
    let out = support::cutover(["strategies", "--json"]).run();
    let names: Vec<String> =
        out.json::<Vec<Value>>().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in &names {
        let out = support::cutover([
            "deploy",
            "--config",
            example().to_str().unwrap(),
            "--scenario",
            scenario.to_str().unwrap(),
            "--strategy",
            name,
            "--json",
        ])
        .run();
        assert_eq!(out.status.code(), Some(0), "{name}: {:?}", out.stderr_text());
        let evs = out.json_lines();
        let end = finished(&evs);
        assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 1000]]), "{name}");
    }
}

/// Trust, then verify: `immediate` returns as soon as every update is accepted. The driver's own
/// read of the fleet then waits for the release to serve (a healthy one: exit 0, all serving), or
/// fails the deploy naming the machines that never came up (an unhealthy one: exit 1).
#[test]
fn a_strategy_success_is_verified_on_the_fleet_before_it_is_reported() {
    let ok = support::cutover([
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--strategy",
        "immediate",
        "--json",
    ])
    .run();
    assert_eq!(ok.status.code(), Some(0), "{}", ok.text());
    let evs = ok.json_lines();
    assert_eq!(finished(&evs)["fleet"]["serving"], 10, "the report's fleet is the verified one");

    let out = support::cutover([
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--strategy",
        "immediate",
        "--scenario",
        &scenario("failing-release.toml"),
        "--json",
    ])
    .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let evs = out.json_lines();
    let end = finished(&evs);
    assert_eq!(end["outcome"], "failed");
    let error = end["error"].as_str().unwrap();
    assert!(
        error.contains("the strategy reported success, but 10 machine(s) of v2 that should run are not started and passing"),
        "{error}"
    );
    // A machine id, from the strategy's list of the fleet in the events.
    let stdout = out.stdout_text();
    let at = stdout.find("\"id\":\"").expect("the fleet's machines are in the events") + 6;
    let first = &stdout[at..at + stdout[at..].find('"').unwrap()];
    assert!(error.contains(first), "the error names the machines ({first}): {error}");
    assert!(error.contains("critical"), "and why they are not passing: {error}");
}
