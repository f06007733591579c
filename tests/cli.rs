//! The `cutover` binary end to end: deploys on the simulator, JSON events, exit codes, and errors that
//! say which file, which key and what was expected.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn cutover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .env("CUTOVER_CACHE_DIR", support::cache_dir())
        .output()
        .expect("run cutover")
}

fn example() -> PathBuf {
    support::root().join("examples/app/fly.toml")
}

fn scenario(name: &str) -> String {
    support::root().join("examples/app/scenarios").join(name).display().to_string()
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event: {l}: {e}")))
        .collect()
}

fn finished(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "deploy_finished", "the last event closes the deploy");
    last
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn rolling_deploy_of_ten_machines_succeeds() {
    let out = cutover(&["deploy", "--config", example().to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let evs = events(&out);
    assert_eq!(evs[0]["event"], "deploy_started");
    assert_eq!(evs[0]["strategy"], "rolling");
    assert_eq!(evs[0]["machines"], 10);
    let end = finished(&evs);
    assert_eq!(end["outcome"], "succeeded");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 10]]));
    assert_eq!(end["fleet"]["serving"], 10);
    assert!(evs.iter().any(|e| e["call"] == "machines.update"), "host calls are in the stream");
}

#[test]
fn human_output_shows_phases_and_a_summary() {
    let out = cutover(&["deploy", "--config", example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    assert!(stdout.contains("==> Deploying hello-cutover v1 -> v2"), "{stdout}");
    assert!(stdout.contains("--> app: batch 1/3"), "{stdout}");
    assert!(stdout.contains("==> Deployed v2"), "{stdout}");
    assert!(stdout.contains("10 on v2; 10/10 serving"), "{stdout}");
}

#[test]
fn failing_release_exits_1_and_rolls_back_to_v1() {
    let out = cutover(&[
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--scenario",
        &scenario("failing-release.toml"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let evs = events(&out);
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
    let out =
        cutover(&["deploy", "--config", example().to_str().unwrap(), "--scenario", &scenario("large.toml")]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("10000 on v2; 10000/10000 serving"), "{stdout}");
}

/// Write a fly.toml into a temp dir and deploy it; returns (exit code, stderr).
fn deploy_config(fly: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fly.toml");
    std::fs::write(&path, fly).unwrap();
    let mut args = vec!["deploy", "--config", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = cutover(&args);
    (out.status.code(), text(&out).1)
}

#[test]
fn wrong_type_in_fly_toml_exits_2_naming_file_and_key() {
    let (code, err) =
        deploy_config("app = \"a\"\n[build]\nimage = \"x\"\n[deploy]\nmax_unavailable = \"lots\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("fly.toml") && err.contains("deploy.max_unavailable"), "{err}");
    assert!(err.contains("expected a count >= 1 or a fraction"), "{err}");
    assert!(err.contains("nothing was changed") || err.contains("error:"), "{err}");
}

#[test]
fn unknown_strategy_exits_2_listing_the_built_ins() {
    let (code, err) =
        deploy_config("app = \"a\"\n[build]\nimage = \"x\"\n[deploy]\nstrategy = \"bluegren\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown strategy `bluegren`") && err.contains("rolling"), "{err}");
}

#[test]
fn strategy_param_of_the_wrong_kind_exits_2() {
    let (code, err) =
        deploy_config("app = \"a\"\n[build]\nimage = \"x\"\n[cutover.params]\nretries = \"often\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cutover.params.retries") && err.contains("expected an integer"), "{err}");
}

#[test]
fn unknown_keys_warn_but_deploy() {
    let (code, err) = deploy_config("app = \"a\"\nmystery = 1\n[build]\nimage = \"x\"\n", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning:") && err.contains("unknown key `mystery`"), "{err}");
}

#[test]
fn missing_image_exits_2_with_advice() {
    let (code, err) = deploy_config("app = \"a\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--image"), "{err}");
}

#[test]
fn missing_config_exits_2_with_a_hint() {
    let out = cutover(&["deploy", "--config", "/nonexistent/fly.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("cannot read /nonexistent/fly.toml"));
}

#[test]
fn strategy_from_a_wasm_path_is_used() {
    let wasm = support::guest_target().join("wasm32-wasip2/release/rolling.wasm");
    let out = cutover(&[
        "deploy",
        "--config",
        example().to_str().unwrap(),
        "--strategy",
        wasm.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(finished(&events(&out))["outcome"], "succeeded");
}

#[test]
fn a_crashing_strategy_exits_1_with_its_panic() {
    support::guest("trap");
    let wasm = support::guest_target().join("wasm32-wasip2/release/trap.wasm");
    let out =
        cutover(&["deploy", "--config", example().to_str().unwrap(), "--strategy", wasm.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("the strategy crashed") && stdout.contains("deliberate bug"), "{stdout}");
    assert!(stdout.contains("10 on v1; 10/10 serving"), "the fleet is untouched: {stdout}");
}

#[test]
fn strategies_lists_the_built_ins_with_their_parameters() {
    let out = cutover(&["strategies"]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    for name in ["bluegreen", "immediate", "rolling"] {
        assert!(stdout.lines().any(|l| l == name), "{name} missing: {stdout}");
    }
    assert!(stdout.contains("retries — an integer (default 3)"), "{stdout}");
    assert!(stdout.contains("rollback — a boolean (true or false) (default true)"), "{stdout}");
    assert!(stdout.contains("retain_blue — a boolean (true or false) (default false)"), "{stdout}");
}

#[test]
fn inspect_shows_world_version_and_parameters() {
    let wasm = support::guest_target().join("wasm32-wasip2/release/rolling.wasm");
    let out = cutover(&["inspect", wasm.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["contract_version"], "0.1.0");
    assert_eq!(v["strategy"]["name"], "rolling");
    assert!(v["imports"].as_array().unwrap().iter().any(|i| i == "cutover:strategy/machines@0.1.0"));
}

#[test]
fn inspect_of_something_else_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "not wasm").unwrap();
    let out = cutover(&["inspect", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("magic number"));
}

#[test]
fn help_teaches_the_commands() {
    let out = cutover(&["--help"]);
    let (stdout, _) = text(&out);
    for word in ["deploy", "strategies", "inspect", "Exit codes"] {
        assert!(stdout.contains(word), "--help lacks {word}: {stdout}");
    }
    let out = cutover(&["deploy", "--help"]);
    assert!(text(&out).0.contains("--scenario"));
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
    let out = cutover(&["strategies", "--json"]);
    let names: Vec<String> = serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in &names {
        let out = cutover(&[
            "deploy",
            "--config",
            example().to_str().unwrap(),
            "--scenario",
            scenario.to_str().unwrap(),
            "--strategy",
            name,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}: {:?}", text(&out).1);
        let evs = events(&out);
        let end = finished(&evs);
        assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 1000]]), "{name}");
    }
}
