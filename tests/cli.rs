//! The `cutover` binary end to end: deploys on the simulator, JSON events, exit codes, and errors that
//! say which file, which key and what was expected.

use crate::support;

use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run cutover with a state directory of its own (no journal or simulated fleet shared with others).
fn cutover(args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    cutover_in(state.path(), args)
}

/// Run cutover with the state directory `state`, so several runs share one app history.
fn cutover_in(state: &Path, args: &[&str]) -> Output {
    command(state, args).output().expect("run cutover")
}

fn command(state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cutover"));
    cmd.args(args).env("CUTOVER_CACHE_DIR", support::cache_dir()).env("CUTOVER_STATE_DIR", state);
    cmd
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

/// `cutover releases --json` for the example app.
fn releases(state: &Path, config: &str) -> Vec<Value> {
    let out = cutover_in(state, &["releases", "--config", config, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn releases_are_journaled_and_rollback_returns_to_the_previous_one() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    let image = "registry.fly.io/hello-cutover:v3";
    let out = cutover_in(state, &["releases", "--config", config]);
    assert!(text(&out).0.contains("no releases recorded"), "{:?}", text(&out));

    assert_eq!(cutover_in(state, &["deploy", "--config", config, "--json"]).status.code(), Some(0));
    // The second deploy starts from the fleet the first one left (kept in the state directory).
    let out = cutover_in(state, &["deploy", "--config", config, "--image", image, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let evs = events(&out);
    assert_eq!(evs[0]["previous"]["version"], 2);
    assert_eq!(finished(&evs)["fleet"]["by_version"], serde_json::json!([[3, 10]]));

    let out = cutover_in(state, &["rollback", "--config", config, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let evs = events(&out);
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
    let table = text(&cutover_in(state, &["releases", "--config", config])).0;
    assert!(table.contains("rollback") && table.contains("succeeded"), "{table}");

    // An unknown release is refused before anything changes; a known one is reachable with --to.
    let out = cutover_in(state, &["rollback", "--config", config, "--to", "v9"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("v9 is not a release cutover knows"), "{:?}", text(&out));
    let out = cutover_in(state, &["rollback", "--config", config, "--to", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(finished(&events(&out))["fleet"]["by_version"], serde_json::json!([[1, 10]]));
    // A new deploy never reuses a version number, even after rolling back.
    let out = cutover_in(state, &["deploy", "--config", config, "--json"]);
    assert_eq!(events(&out)[0]["target"]["version"], 4);
}

#[test]
fn rollback_after_a_retained_bluegreen_switches_back_to_the_kept_machines() {
    let dir = tempfile::tempdir().unwrap();
    let fly = std::fs::read_to_string(example())
        .unwrap()
        .replace("strategy = \"rolling\"", "strategy = \"bluegreen\"")
        .replace("retries = 3", "retries = 3\n    retain_blue = true")
        .replace("scenarios/happy.toml", &scenario("happy.toml"));
    let config = dir.path().join("fly.toml");
    std::fs::write(&config, fly).unwrap();
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");

    let out = cutover_in(&state, &["deploy", "--config", config, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let evs = events(&out);
    let blue: Vec<Value> = evs
        .iter()
        .find(|e| e["call"] == "machines.list")
        .map(|e| e["reply"]["machines"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect())
        .unwrap();
    assert_eq!(finished(&evs)["fleet"]["by_version"], serde_json::json!([[1, 10], [2, 10]]), "blue kept");

    let out = cutover_in(&state, &["rollback", "--config", config, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let evs = events(&out);
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
    let fly = std::fs::read_to_string(example())
        .unwrap()
        .replace("strategy = \"rolling\"", "strategy = \"bluegreen\"")
        .replace("retries = 3", "retries = 3\n    retain_blue = true")
        .replace("wait_timeout = \"5m\"", "wait_timeout = \"1m\"")
        .replace("scenarios/happy.toml", &scenario("happy.toml"));
    let config = dir.path().join("fly.toml");
    std::fs::write(&config, fly).unwrap();
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    assert_eq!(cutover_in(&state, &["deploy", "--config", config, "--json"]).status.code(), Some(0));

    // Same fleet, but v1 now takes ten minutes to boot: the kept machines cannot be ready in time.
    let slow = dir.path().join("slow-v1.toml");
    let happy = std::fs::read_to_string(scenario("happy.toml")).unwrap();
    std::fs::write(
        &slow,
        format!("{happy}\n[faults.slow_images]\n\"registry.fly.io/hello-cutover:v1\" = \"10m\"\n"),
    )
    .unwrap();
    let out =
        cutover_in(&state, &["rollback", "--config", config, "--scenario", slow.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let evs = events(&out);
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
    let out = cutover_in(state, &["promote", "--config", config]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("no deploy of hello-cutover is running"), "{:?}", text(&out));

    // A canary with a manual gate after the 10% step, and no simulated operator: it waits for us.
    let dir = tempfile::tempdir().unwrap();
    let fly = std::fs::read_to_string(example())
        .unwrap()
        .replace("strategy = \"rolling\"", "strategy = \"canary\"")
        .replace("retries = 3", "retries = 3\n    steps = [10, 50]\n    manual_gates = [10]")
        .replace("scenarios/happy.toml", &scenario("happy.toml"));
    let own = dir.path().join("fly.toml");
    std::fs::write(&own, fly).unwrap();
    let own = own.to_str().unwrap();
    let mut child = command(state, &["deploy", "--config", own, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    let out = cutover_in(state, &["deploy", "--config", own]);
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    let holder = format!("in process {}", child.id());
    assert!(
        text(&out).1.contains("another deploy of hello-cutover is running") && text(&out).1.contains(&holder),
        "{:?}",
        text(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "fails fast");
    assert_eq!(releases(state, own).len(), listed.len(), "the refused deploy is not recorded");
    let out = cutover_in(state, &["promote", "--config", own]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(text(&out).0.contains("promoted gate `step-10`"), "{:?}", text(&out));

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
fn status_after_a_deploy_shows_the_release_and_the_fleet() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    // Nothing recorded yet: a clear error, and no journal created by looking.
    let out = cutover_in(state, &["status", "--config", config]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    let expected =
        format!("no deploys of hello-cutover recorded in {} yet; run `cutover deploy`", state.display());
    assert!(text(&out).1.contains(&expected), "{:?}", text(&out));
    assert!(!state.join("journal.db").exists(), "status created the journal");

    assert_eq!(cutover_in(state, &["deploy", "--config", config, "--json"]).status.code(), Some(0));
    let out = cutover_in(state, &["status", "--config", config]);
    let (stdout, stderr) = text(&out);
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

    let help = text(&cutover(&["status", "--help"])).0;
    assert!(help.contains("interrupted") && help.contains("Exit codes"), "{help}");
    assert!(text(&cutover(&["--help"])).0.contains("status"));
}

#[test]
fn status_json_has_the_latest_release_and_the_fleet() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let config = example();
    let config = config.to_str().unwrap();
    assert_eq!(cutover_in(state, &["deploy", "--config", config, "--json"]).status.code(), Some(0));
    let out = cutover_in(state, &["status", "--config", config, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
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
    let fly = std::fs::read_to_string(example())
        .unwrap()
        .replace("strategy = \"rolling\"", "strategy = \"canary\"")
        .replace("retries = 3", "retries = 3\n    steps = [10, 50]\n    manual_gates = [10]")
        .replace("scenarios/happy.toml", &scenario("happy.toml"));
    let config = dir.path().join("fly.toml");
    std::fs::write(&config, fly).unwrap();
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    let mut child = command(&state, &["deploy", "--config", config, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reached = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("waiting at manual gate"));
    if !reached {
        let _ = child.kill();
        panic!("the deploy never reached its manual gate");
    }
    let out = cutover_in(&state, &["status", "--config", config]);
    let stdout = text(&out).0;
    assert!(stdout.contains(&format!("with canary: running (process {})", child.id())), "{stdout}");
    assert!(
        stdout.contains("Waiting:  at manual gate `step-10`: `cutover promote` lets it go on"),
        "{stdout}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let out = cutover_in(&state, &["status", "--config", config]);
    let (stdout, stderr) = text(&out);
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
    let s: Value =
        serde_json::from_slice(&cutover_in(&state, &["status", "--config", config, "--json"]).stdout)
            .unwrap();
    assert_eq!(s["latest"]["status"], "interrupted");
    assert!(s["advice"].as_str().unwrap().contains("`cutover resume` continues it"), "{s}");
}
