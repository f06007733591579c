//! Strategy projects end to end: `cutover new` writes one, `cutover build` builds it (offline: the
//! vendored SDK and the crates already in the local cargo cache), and the component deploys on the
//! simulator. Also the Rust example under examples/strategies, and the errors for bad input.

use crate::support::{self, Cutover, OutputExt};

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `cutover ARGS` run in `cwd`, building strategy projects offline into the shared target directory.
fn in_dir(cwd: &Path, args: &[&str]) -> Cutover {
    support::cutover(args).cwd(cwd).offline_strategy_builds()
}

/// Build the project in `dir` with `cutover build` and return the component's path (from its output).
fn build(dir: &Path) -> PathBuf {
    let out = in_dir(dir, &["build"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let stdout = out.stdout_text();
    let line = stdout.lines().find(|l| l.starts_with("Built ")).unwrap_or_else(|| panic!("{stdout}"));
    // "Built NAME: PATH (N bytes)"
    let path = line.split_once(": ").unwrap().1.rsplit_once(" (").unwrap().0;
    let path = PathBuf::from(path);
    assert!(path.exists(), "{line}");
    path
}

/// Deploy `strategy` on the simulator with the example app's config; returns the JSON events.
fn deploy(strategy: &Path, extra: &[&str]) -> Vec<Value> {
    let config = support::root().join("examples/app/fly.toml");
    let mut args = vec![
        "deploy",
        "--config",
        config.to_str().unwrap(),
        "--platform",
        "sim",
        "--strategy",
        strategy.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = in_dir(&support::root(), &args).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    out.json_lines()
}

fn finished(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "deploy_finished");
    last
}

#[test]
fn a_new_rust_strategy_builds_and_deploys_on_the_sim() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_dir(tmp.path(), &["new", "demo-strat", "--lang", "rust"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let project = tmp.path().join("demo-strat");
    for file in [
        "cutover-strategy.toml",
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        ".gitignore",
        "wit/strategy.wit",
        "wit/v0.2/strategy.wit",
        "vendor/cutover-sdk/Cargo.toml",
        "vendor/cutover-sdk/src/lib.rs",
    ] {
        assert!(project.join(file).is_file(), "{file} missing");
    }
    assert!(!project.join("vendor/cutover-sdk/template").exists(), "the template is not part of the SDK");
    let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
    assert!(lib.contains("name: \"demo-strat\"") && !lib.contains("{{"), "placeholders are filled");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("demo_strat.wasm"), "{readme}");

    let wasm = build(&project);
    assert!(wasm.ends_with("wasm32-wasip2/release/demo_strat.wasm"), "{}", wasm.display());

    let events = deploy(&wasm, &[]);
    assert_eq!(events[0]["strategy"], "demo-strat");
    let end = finished(&events);
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 10]]));
    assert_eq!(end["fleet"]["serving"], 10);
}

/// The project's own test (`test.sh`: build, then `cutover verify`) passes for the template as written.
#[test]
fn a_new_rust_strategy_passes_its_own_test() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_dir(tmp.path(), &["new", "tested-strat", "--lang", "rust"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let out = support::script(tmp.path().join("tested-strat/test.sh")).offline_strategy_builds().run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("PASS: tested-strat kept every invariant"), "{}", out.text());
}

#[test]
fn the_rust_drain_by_load_example_keeps_at_most_max_draining_cordoned() {
    let example = support::root().join("examples/strategies/rust-drain-by-load");
    let wasm = build(&example);
    // One of the 0.1 components the host must keep running: the SDK's `contract-0-1` feature.
    let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(out.json::<Value>()["contract_version"], "0.1.0", "{}", out.text());

    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("connections.toml");
    std::fs::write(
        &scenario,
        "seed = 11\n[fleet]\nmachines = 7\nregions = [\"ams\", \"iad\"]\n\
         image = \"registry.fly.io/hello-cutover:v1\"\n\
         [traffic]\nconnections = 3\nconnection_lifetime = [2000, 40000]\n",
    )
    .unwrap();
    let events = deploy(&wasm, &["--scenario", scenario.to_str().unwrap()]);
    let end = finished(&events);
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 7]]));

    // Replay the calls: a blue machine is cordoned by `traffic.cordon` and gone at `machines.destroy`.
    let calls: Vec<&Value> = events.iter().filter(|e| e["event"] == "host_call").collect();
    let ids = |e: &Value| -> Vec<String> {
        e["ids"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut cordoned = BTreeSet::new();
    let mut most = 0;
    let mut destroyed = 0;
    for call in &calls {
        match call["call"].as_str() {
            Some("traffic.cordon") => cordoned.extend(ids(call)),
            Some("machines.destroy") => {
                for id in ids(call) {
                    cordoned.remove(&id);
                    destroyed += 1;
                }
            }
            _ => {}
        }
        most = most.max(cordoned.len());
    }
    assert_eq!(most, 2, "max_draining (default 2) old machines drain at once, never more");
    assert_eq!(destroyed, 7, "every old machine is destroyed");
    let waited = calls.iter().filter(|c| c["call"] == "traffic.connections").any(|c| {
        c["reply"]["counts"].as_array().is_some_and(|a| a.iter().any(|n| n["Ok"].as_u64() > Some(0)))
    });
    assert!(waited, "some old machine held connections and was waited on");
}

#[test]
fn a_bad_name_is_refused_with_what_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_dir(tmp.path(), &["new", "Demo_Strat", "--lang", "rust"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr_text().contains("`Demo_Strat` is not a valid strategy name"), "{}", out.text());
    assert!(out.stderr_text().contains("lower-case letters, digits and dashes"), "{}", out.text());
    assert!(!tmp.path().join("Demo_Strat").exists(), "nothing is written");
}

#[test]
fn an_existing_directory_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    let out = in_dir(tmp.path(), &["new", "demo-strat", "--lang", "rust", "--dir", "mine"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr_text().contains("already exists and is not empty"), "{}", out.text());
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "keep me");
    assert!(!dir.join("Cargo.toml").exists());

    // An empty directory is fine.
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let out = in_dir(tmp.path(), &["new", "demo-strat", "--lang", "rust", "--dir", "empty"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(tmp.path().join("empty/cutover-strategy.toml").is_file());
}

#[test]
fn an_unknown_language_lists_the_available_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_dir(tmp.path(), &["new", "demo-strat", "--lang", "cobol"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let err = out.stderr_text();
    assert!(err.contains("no template for language `cobol`") && err.contains("rust"), "{err}");
    assert!(!tmp.path().join("demo-strat").exists());
}

#[test]
fn building_without_a_manifest_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_dir(tmp.path(), &["build"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let err = out.stderr_text();
    assert!(err.contains("cutover-strategy.toml not found") && err.contains("cutover new"), "{err}");
}

#[test]
fn a_missing_build_tool_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("cutover-strategy.toml"),
        "name = \"x\"\nlanguage = \"python\"\nbuild = [\"componentize-py-not-installed-here\", \"x\"]\n\
         output = \"x.wasm\"\ninstall = \"install it with `pip install componentize-py`\"\n",
    )
    .unwrap();
    let out = in_dir(tmp.path(), &["build"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let err = out.stderr_text();
    assert!(err.contains("was not found on PATH") && err.contains("pip install componentize-py"), "{err}");
}
