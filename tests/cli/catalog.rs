//! What the binary tells about strategies and itself: `cutover strategies`, `cutover inspect` and
//! `--help`.

use crate::support::{self, OutputExt};

use serde_json::Value;

#[test]
fn strategies_lists_the_built_ins_with_their_parameters() {
    let out = support::cutover(["strategies"]).run();
    assert_eq!(out.status.code(), Some(0));
    let stdout = out.stdout_text();
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
    let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let v: Value = out.json();
    assert_eq!(v["contract_version"], "0.2.0");
    assert_eq!(v["strategy"]["name"], "rolling");
    assert!(v["imports"].as_array().unwrap().iter().any(|i| i == "cutover:strategy/machines@0.2.0"));
}

#[test]
fn inspect_of_something_else_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "not wasm").unwrap();
    let out = support::cutover(["inspect", path.to_str().unwrap()]).run();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr_text().contains("magic number"));
}

#[test]
fn help_teaches_the_commands() {
    let out = support::cutover(["--help"]).run();
    let stdout = out.stdout_text();
    for word in ["deploy", "strategies", "inspect", "Exit codes"] {
        assert!(stdout.contains(word), "--help lacks {word}: {stdout}");
    }
    let out = support::cutover(["deploy", "--help"]).run();
    assert!(out.stdout_text().contains("--scenario"));
}
