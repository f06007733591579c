//! `cutover verify` end to end: every built-in passes; broken strategies fail with the invariant they
//! break named; hostile and foreign components are stopped or refused with a clear error.

use crate::support::{self, OutputExt};

use cutover::verify::{self, Invariant, Options, RunOutcome, Verdict};
use serde_json::Value;
use std::time::Duration;

/// A test guest's .wasm, built on first use.
fn guest_path(name: &str) -> String {
    support::guest(name);
    support::guest_target().join("wasm32-wasip2/release").join(format!("{name}.wasm")).display().to_string()
}

fn passes(strategy: &str, extra: &[&str]) {
    let mut args = vec!["verify", strategy];
    args.extend(extra);
    let out = support::cutover(&args).run();
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    assert_eq!(out.status.code(), Some(0), "{strategy}:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("PASS: {strategy} kept every invariant in all 19 scenarios")),
        "{stdout}"
    );
}

#[test]
fn rolling_passes() {
    passes("rolling", &[]);
}

#[test]
fn bluegreen_passes() {
    passes("bluegreen", &[]);
}

#[test]
fn canary_passes() {
    passes("canary", &[]);
}

#[test]
fn drain_then_destroy_passes() {
    passes("drain-then-destroy", &[]);
}

/// immediate promises speed, not availability: it passes once told so, and without that the report
/// says it took capacity out (the capacity invariant fires on a real strategy).
#[test]
fn immediate_passes_with_allow_downtime_and_breaks_capacity_without() {
    passes("immediate", &["--allow-downtime"]);
    let out = support::cutover(["verify", "immediate"]).run();
    let stdout = out.stdout_text();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("capacity broken: process group `app` had 0 of 2 machine(s) serving"),
        "{stdout}"
    );
    assert!(stdout.contains("during host call #6 (machines.update of 3 machine(s))"), "{stdout}");
}

#[test]
fn destroying_blue_before_green_passed_is_caught() {
    let out = support::cutover(["verify", &guest_path("eager")]).run();
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("replacement-first broken:"), "{stdout}");
    assert!(
        stdout.contains("was destroyed while 0 machine(s) of v2 in its group had passed their checks"),
        "{stdout}"
    );
    assert!(stdout.contains("blue was destroyed before green passed"), "{stdout}");
    assert!(stdout.contains("(machines.destroy of 3 machine(s))"), "the report names the call: {stdout}");
    assert!(stdout.contains("FAIL: eager broke"), "{stdout}");
}

#[test]
fn leaving_blue_behind_is_caught() {
    let out = support::cutover(["verify", &guest_path("hoarder"), "--json"]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON report");
    let happy = &report["scenarios"][1];
    assert_eq!(happy["name"], "happy path, 3 machines");
    assert_eq!(happy["outcome"]["outcome"], "succeeded");
    let verdict = |name: &str| {
        happy["checks"].as_array().unwrap().iter().find(|c| c[0] == name).map(|c| c[1].clone()).unwrap()
    };
    assert_eq!(verdict("one-release")["verdict"], "fail");
    let message = verdict("one-release")["message"].as_str().unwrap().to_string();
    assert!(message.contains("the fleet ended on 3 on v1, 3 on v2"), "{message}");
    let left = verdict("nothing-lost");
    assert!(left["message"].as_str().unwrap().contains("machines left over"), "{left}");
    assert_eq!(verdict("replacement-first")["verdict"], "not_applicable", "blue was never destroyed");
    assert_eq!(verdict("capacity")["verdict"], "pass");
}

/// `--allow-standby` excuses machines of the replaced release kept *stopped* for rollback, not ones
/// left running: the hoarder's blue machines still serve, so it still breaks `one-release`.
#[test]
fn allow_standby_does_not_excuse_running_leftovers() {
    let out = support::cutover(["verify", &guest_path("hoarder"), "--allow-standby"]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("--allow-standby") && report.contains("one-release broken"), "{report}");
}

/// A strategy that loops forever is stopped by the sandbox in every scenario and reported, not hung on.
#[tokio::test(start_paused = true)]
async fn a_looping_strategy_fails_the_sandbox_invariant() {
    let runtime = support::runtime();
    let spin = runtime.load(&support::guest("spin")).unwrap();
    let info = runtime.describe(&spin).await.unwrap();
    let mut opts = Options::default();
    opts.limits.cpu_budget = Duration::from_millis(50);
    let report = verify::verify(&runtime, &spin, &info, &opts).await.unwrap();
    assert!(!report.passed());
    assert_eq!(report.broken(), [Invariant::Sandbox]);
    for s in &report.scenarios {
        assert!(
            matches!(&s.outcome, RunOutcome::Stopped(e) if e.contains("CPU budget")),
            "{}: {:?}",
            s.name,
            s.outcome
        );
        assert!(
            s.checks
                .iter()
                .all(|(i, v)| *i == Invariant::Sandbox || matches!(v, Verdict::NotApplicable { .. }))
        );
    }
    assert!(
        report
            .text()
            .contains("sandbox broken: the sandbox stopped the strategy: strategy stopped by its CPU budget")
    );
}

#[test]
fn another_contract_version_is_refused_with_both_versions() {
    let wasm = guest_path("future");
    for cmd in ["verify", "inspect"] {
        let out = support::cutover([cmd, &wasm]).run();
        let stderr = out.stderr_text();
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains(
                "this strategy targets cutover:strategy@0.3.0; this host implements 0.1.x and 0.2.x"
            ),
            "{cmd}: {stderr}"
        );
        assert!(stderr.contains("Rebuild the strategy against"), "{cmd}: {stderr}");
    }
}

#[test]
fn a_required_parameter_without_default_is_bad_input() {
    let out = support::cutover(["verify", &guest_path("foreign")]).run();
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("requires parameter `victim`, which has no default"), "{stderr}");
    // A scenario file may set it; one that does not says where to.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, "[verify]\nexpect = \"succeed\"\n").unwrap();
    let out =
        support::cutover(["verify", &guest_path("foreign"), "--scenario", file.to_str().unwrap()]).run();
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("requires parameter `victim`, which has no default: set it in `[verify] params`"),
        "{stderr}"
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let out = support::cutover(["verify", "--help"]).run();
    let stdout = out.stdout_text();
    assert!(stdout.contains("Exit codes: 0 every invariant kept; 1 an invariant broken"), "{stdout}");
    assert!(stdout.contains("--allow-downtime") && stdout.contains("--json"), "{stdout}");
}

#[test]
fn inspect_names_the_toolchain_and_parameters() {
    for wasm in [
        support::guest_target().join("wasm32-wasip2/release/rolling.wasm").display().to_string(),
        guest_path("eager"),
    ] {
        let out = support::cutover(["inspect", &wasm, "--json"]).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        let v: Value = out.json();
        assert_eq!(v["toolchain"]["language"], "Rust", "{wasm}: {v}");
        let tools = v["toolchain"]["tools"].as_array().unwrap();
        assert!(tools.iter().any(|t| t[0] == "rustc"), "{wasm}: {tools:?}");
        assert!(tools.iter().any(|t| t[0] == "wit-component"), "{wasm}: {tools:?}");
        assert!(v["size_bytes"].as_u64().unwrap() > 0);
    }
    let out = support::cutover([
        "inspect",
        &support::guest_target().join("wasm32-wasip2/release/rolling.wasm").display().to_string(),
    ])
    .run();
    let stdout = out.stdout_text();
    assert!(stdout.contains("built by:  Rust (rustc "), "{stdout}");
    assert!(stdout.contains("contract:  cutover:strategy@0.2.0"), "{stdout}");
    assert!(stdout.contains("max_unavailable"), "parameters are listed: {stdout}");
}

/// Every built-in is a 0.2 component (built with the Rust SDK on 0.2); only the canary imports
/// `metrics`, and the others are not granted its queries by default (`cutover_config`'s
/// `BUILTINS_USING_METRICS`).
#[test]
fn the_builtins_are_contract_0_2_and_only_the_canary_imports_metrics() {
    support::guest("eager"); // builds the guests; the built-ins were built with the binary
    for name in ["bluegreen", "canary", "drain_then_destroy", "immediate", "rolling"] {
        let wasm = support::guest_target().join(format!("wasm32-wasip2/release/{name}.wasm"));
        let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).run();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", out.text());
        let v: Value = out.json();
        assert_eq!(v["contract_version"], "0.2.0", "{name}: {v}");
        let metrics = v["imports"].as_array().unwrap().iter().any(|i| i == "cutover:strategy/metrics@0.2.0");
        assert_eq!(metrics, name == "canary", "{name} imports metrics: {}", v["imports"]);
    }
    assert_eq!(cutover::config::BUILTINS_USING_METRICS, ["canary"]);
}

fn scenario_file(name: &str) -> String {
    support::root().join("examples/app/scenarios").join(name).display().to_string()
}

/// The canary's metric gate through `cutover verify --scenario`: a release whose error ratio is 5
/// points above stable's is stopped at the first step (the machines all pass their checks, so only
/// the judge can tell); one whose metrics match stable's passes every step.
#[test]
fn verify_scenario_files_exercise_the_canary_metric_gate() {
    let out = support::cutover([
        "verify",
        "canary",
        "--scenario",
        &scenario_file("canary-metrics-regression.toml"),
        "--scenario",
        &scenario_file("canary-metrics-healthy.toml"),
        "--json",
    ])
    .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let report: Value = out.json();
    let runs = report["scenarios"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{report}");
    let bad = &runs[0];
    assert_eq!(bad["name"], "canary-metrics-regression.toml");
    assert_eq!(bad["outcome"]["outcome"], "failed", "{bad}");
    let error = bad["outcome"]["error"].as_str().unwrap();
    assert!(
        error.contains("step 1/3 (10%): the metric judge failed the canary on error ratio")
            && error.contains("http_requests_total{app=\"verify-app\",version=~\"2\",instance=~\"")
            && error.contains("v1 100% / v2 0%")
            && error.contains("the canary was removed"),
        "stopped at the first step by the judge, naming the query, traffic back, canary gone: {error}"
    );
    let good = &runs[1];
    assert_eq!(good["name"], "canary-metrics-healthy.toml");
    assert_eq!(good["outcome"]["outcome"], "succeeded", "{good}");
}

/// A strategy that never looks at metrics ships the regression, and verify says so (`verdict`).
#[test]
fn a_strategy_that_ships_a_metric_regression_breaks_the_verdict_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(scenario_file("canary-metrics-regression.toml")).unwrap();
    // Rolling has none of the canary's parameters: the scenario without them.
    let start = text.find("[verify.params]").unwrap();
    let end = text.find("[fleet]").unwrap();
    let file = dir.path().join("regression.toml");
    std::fs::write(&file, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let out = support::cutover(["verify", "rolling", "--scenario", file.to_str().unwrap()]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stdout_text().contains("regresses on the metrics the scenario describes"), "{}", out.text());
}

#[test]
fn a_bad_scenario_file_is_bad_input_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    for (text, expected) in [
        ("seed = 1\n", "no `[verify]` table"),
        ("[verify]\nexpect = \"maybe\"\n", "`verify.expect` = \"maybe\": expected \"fail\" or \"succeed\""),
        (
            "[verify]\nexpect = \"fail\"\nparams = { nope = 1 }\n",
            "`verify.params.nope`: strategy canary has no such parameter",
        ),
        (
            "[verify]\nexpect = \"fail\"\nparams = { steps = \"x\" }\n",
            "`verify.params.steps` = \"x\": expected",
        ),
        ("[verify]\nexpect = \"fail\"\n[fleet]\nmachinez = 3\n", "unknown field `machinez`"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = support::cutover(["verify", "canary", "--scenario", file.to_str().unwrap()]).run();
        assert_eq!(out.status.code(), Some(2), "{text}: {}", out.text());
        let stderr = out.stderr_text();
        assert!(
            stderr.contains(&file.display().to_string()) && stderr.contains(expected),
            "{text}: {stderr}"
        );
    }
}
