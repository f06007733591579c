//! Strategies in Python and JavaScript, built from source with the pinned toolchains `sdk/setup`
//! installs, and run on the simulator through the `cutover` binary: the two examples in
//! examples/strategies/ (region-by-region, manual-split) and the project templates in sdk/*/template
//! (scaffolded by `cutover new`). And every example, in all three languages (the Rust one built by
//! `cutover build`): each passes `cutover verify` and deploys the example app on the local platform,
//! under load, without a failed request.
//!
//! A build takes about a minute (each component carries an interpreter), so built components are kept
//! in target/polyglot-components/, named by a hash of everything they are built from (sources, SDK,
//! contract, toolchain pins): a rerun without changes builds nothing. Missing toolchains fail the tests
//! with the command to run; they are never skipped.

use crate::support::{self, OutputExt, Toml};

use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

// ---- toolchains and builds ------------------------------------------------------------------------

pub(crate) fn venv_bin() -> PathBuf {
    support::root().join("target/sdk-tools/venv/bin")
}

/// Fail (not skip) when `sdk/setup` has not run: these tests are the only check of the SDKs.
fn require_tools() {
    let missing: Vec<String> = [
        venv_bin().join("componentize-py"),
        support::root().join("sdk/js/node_modules/@bytecodealliance/componentize-js/package.json"),
        support::root().join("sdk/js/node_modules/esbuild/package.json"),
    ]
    .into_iter()
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    assert!(
        missing.is_empty(),
        "the Python/JavaScript strategy toolchains are not installed (missing {}): run `sdk/setup` from \
         the repository root first (it installs the pinned componentize-py and componentize-js)",
        missing.join(", ")
    );
}

/// The `[build]` part of a project's cutover-strategy.toml.
struct Manifest {
    name: String,
    build: Vec<String>,
    output: String,
}

fn manifest(project: &Path) -> Manifest {
    let path = project.join("cutover-strategy.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{}: `{k}` must be a string", path.display()));
    Manifest {
        name: s("name").to_string(),
        build: v["build"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        output: s("output").to_string(),
    }
}

/// Hash every file under `dirs` (skipping build outputs and installed packages), path and content.
fn hash_sources(hasher: &mut blake3::Hasher, dirs: &[PathBuf]) {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if ["node_modules", "target", "__pycache__", "template"].contains(&name.as_str())
                || name.ends_with(".wasm")
            {
                continue;
            }
            if p.is_dir() { walk(&p, files) } else { files.push(p) }
        }
    }
    for dir in dirs {
        let mut files = Vec::new();
        walk(dir, &mut files);
        for f in files {
            hasher.update(f.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
            hasher.update(&std::fs::read(&f).unwrap());
        }
    }
}

/// Build the project at `project` with its manifest's command, unless a component built from the same
/// `sources` is cached; returns the cached component's path. Builds run one at a time (two cores, and a
/// build already uses both).
pub(crate) fn build(project: &Path, sources: &[PathBuf]) -> PathBuf {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    require_tools();
    let m = manifest(project);
    let mut hasher = blake3::Hasher::new();
    hash_sources(&mut hasher, sources);
    let key = hasher.finalize().to_hex();
    let cache = support::root().join("target/polyglot-components");
    let cached = cache.join(format!("{}-{}.wasm", m.name, &key[..16]));
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if cached.exists() {
        return cached;
    }
    let path = std::env::join_paths(
        std::iter::once(venv_bin())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(&m.build[0])
        .args(&m.build[1..])
        .current_dir(project)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("run {:?} in {}: {e} (run `sdk/setup`?)", m.build, project.display()));
    assert!(
        out.status.success(),
        "building {} with {:?} failed:\n{}",
        project.display(),
        m.build,
        out.text()
    );
    eprintln!("built {} in {:.1}s", m.name, started.elapsed().as_secs_f64());
    std::fs::create_dir_all(&cache).unwrap();
    // Builds of older sources of the same project are dead weight (18 MB each): drop them.
    for stale in std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()) {
        let file = stale.file_name().unwrap().to_string_lossy().into_owned();
        if file.strip_prefix(&m.name).is_some_and(|rest| rest.len() == 22 && rest.starts_with('-')) {
            let _ = std::fs::remove_file(&stale);
        }
    }
    let built = project.join(&m.output);
    std::fs::copy(&built, &cached).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    let _ = std::fs::remove_file(&built);
    cached
}

pub(crate) fn example(name: &str, lang: &str) -> PathBuf {
    let root = support::root();
    let dir = root.join("examples/strategies").join(name);
    build(&dir, &[dir.clone(), root.join("sdk").join(lang), root.join("wit")])
}

// ---- running cutover ----------------------------------------------------------------------------

fn calls<'a>(evs: &'a [Value], call: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    evs.iter().filter(move |e| e["event"] == "host_call" && e["call"] == call)
}

/// The example app's fly.toml using `strategy` (a test sets its parameters, then writes it).
fn config(strategy: &Path) -> Toml {
    Toml::example_app().set("deploy.strategy", strategy)
}

/// Region of every machine, from the first `machines.list` reply.
fn regions(evs: &[Value]) -> std::collections::HashMap<String, String> {
    let list = calls(evs, "machines.list").next().expect("a machines.list call");
    list["reply"]["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_string(), m["region"].as_str().unwrap().to_string()))
        .collect()
}

/// The region of each `machines.update` call, in order; every call must stay within one region.
fn update_regions(evs: &[Value]) -> Vec<String> {
    let region_of = regions(evs);
    calls(evs, "machines.update")
        .map(|e| {
            let mut rs: Vec<&String> =
                e["ids"].as_array().unwrap().iter().map(|id| &region_of[id.as_str().unwrap()]).collect();
            rs.dedup();
            assert_eq!(rs.len(), 1, "one update call spans regions {rs:?}: {e}");
            rs[0].clone()
        })
        .collect()
}

// ---- region-by-region (Python) ------------------------------------------------------------------

#[test]
fn region_by_region_deploys_one_region_after_another() {
    let wasm = example("python-region-by-region", "python");
    let dir = tempfile::tempdir().unwrap();
    let fly = config(&wasm).set("cutover.params.pause", "20s").write(dir.path().join("fly.toml"));
    let out = support::cutover(["deploy", "--config", fly.to_str().unwrap(), "--json"])
        .state(dir.path().join("state"))
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    let end = evs.last().unwrap();
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 10]]));
    assert_eq!(end["fleet"]["serving"], 10);

    // Each region's updates come in one run, ams then iad: never two regions in flight.
    let mut order = update_regions(&evs);
    order.dedup();
    assert_eq!(order, ["ams", "iad"], "regions in a stable order, one at a time");
    // Between them, the pause on the host's clock, after ams is healthy and before iad starts.
    let seq = |e: &Value| e["seq"].as_u64().unwrap();
    let sleep = calls(&evs, "runtime.sleep").find(|e| e["ms"] == 20_000).expect("a 20s pause");
    let region_of = regions(&evs);
    let first_iad =
        calls(&evs, "machines.update").find(|e| region_of[e["ids"][0].as_str().unwrap()] == "iad").unwrap();
    let last_ams_healthy = calls(&evs, "health.wait-healthy")
        .filter(|e| region_of[e["ids"][0].as_str().unwrap()] == "ams")
        .last()
        .unwrap();
    assert!(
        seq(last_ams_healthy) < seq(sleep) && seq(sleep) < seq(first_iad),
        "healthy ams, pause, then iad"
    );
}

#[test]
fn region_by_region_stops_at_the_first_bad_region_and_rolls_it_back() {
    let wasm = example("python-region-by-region", "python");
    let dir = tempfile::tempdir().unwrap();
    let fly = config(&wasm).set("cutover.params.regions", "iad, ams").write(dir.path().join("fly.toml"));
    // v2 boots but fails its checks.
    let scenario = Toml::read(support::root().join("examples/app/scenarios/happy.toml"))
        .set("faults.unhealthy_images", ["registry.fly.io/hello-cutover:v2"])
        .write(dir.path().join("bad-v2.toml"));
    let args =
        ["deploy", "--config", fly.to_str().unwrap(), "--scenario", scenario.to_str().unwrap(), "--json"];
    let out = support::cutover(args).state(dir.path().join("state")).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let evs = out.json_lines();
    let end = evs.last().unwrap();
    assert!(end["error"].as_str().unwrap().contains("region iad"), "{end}");
    assert!(
        end["error"].as_str().unwrap().contains("reported: unhealthy: region iad"),
        "the kind is kept: {end}"
    );
    // iad (first by the `regions` parameter) failed; ams was never touched; iad went back to v1.
    let mut order = update_regions(&evs);
    order.dedup();
    assert_eq!(order, ["iad"], "nothing outside the bad region was updated");
    let back: Vec<&Value> = calls(&evs, "machines.update").filter(|e| e["target"]["version"] == 1).collect();
    assert!(!back.is_empty(), "the bad region was rolled back");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10]]));
    assert_eq!(end["fleet"]["serving"], 10);
}

// ---- manual split (JavaScript) ------------------------------------------------------------------

fn weights(e: &Value) -> Vec<(u64, u64)> {
    e["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["version"].as_u64().unwrap(), w["percent"].as_u64().unwrap()))
        .collect()
}

#[test]
fn manual_split_holds_ten_percent_until_promoted_and_rolls_back_by_switching() {
    let wasm = example("js-manual-split", "js");
    let dir = tempfile::tempdir().unwrap();
    let fly = config(&wasm).set("cutover.params.split_percent", 10).write(dir.path().join("fly.toml"));
    let fly = fly.to_str().unwrap();
    let state = dir.path().join("state");

    // No simulated operator in the happy scenario: the deploy waits at its gate for `cutover promote`.
    let mut child = support::cutover(["deploy", "--config", fly, "--json"])
        .state(&state)
        .spawn(Stdio::piped(), Stdio::piped());
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut lines = Vec::new();
    let reached = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(300)) {
            Ok(line) => {
                let waiting = line.contains("waiting at manual gate `split`");
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
        panic!("the deploy never reached its gate: {lines:?}");
    }
    let so_far: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let set: Vec<Vec<(u64, u64)>> = calls(&so_far, "traffic.set-weights").map(weights).collect();
    assert_eq!(set, [vec![(2, 10), (1, 90)]], "10/90 while waiting");
    assert_eq!(calls(&so_far, "machines.clone-from").count(), 1, "the new release came up beside the old");
    assert_eq!(calls(&so_far, "machines.stop").count(), 0, "nothing old touched before the promotion");

    // Named, because the log line comes just before the strategy starts waiting (a gate may be promoted
    // ahead of time).
    let out = support::cutover(["promote", "split", "--config", fly]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let status = child.wait().unwrap();
    lines.extend(rx.iter());
    assert_eq!(status.code(), Some(0), "{lines:?}");
    let evs: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let set: Vec<Vec<(u64, u64)>> = calls(&evs, "traffic.set-weights").map(weights).collect();
    assert_eq!(
        set,
        [vec![(2, 10), (1, 90)], vec![(2, 100)], vec![]],
        "10/90, then 100/0, then by machine count"
    );
    let end = evs.last().unwrap();
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10], [2, 10]]), "old kept, stopped");
    assert_eq!(end["fleet"]["serving"], 10);
    assert_eq!(calls(&evs, "machines.destroy").count(), 0, "old machines are kept, not destroyed");

    // Going back is a switch to the kept machines: no clone, no split, no gate.
    let out = support::cutover(["rollback", "--config", fly, "--json"]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let evs = out.json_lines();
    assert_eq!(calls(&evs, "machines.clone-from").count(), 0, "a switch, not a redeploy");
    assert_eq!(calls(&evs, "runtime.await-promotion").count(), 0, "no gate on the way back");
    let end = evs.last().unwrap();
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["serving"], 10);
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10], [2, 10]]));
}

/// The JavaScript SDK's leftovers, as the Rust SDK's: past the switch, a platform that never stops a
/// machine (`stop machine` down for good) leaves the old machines as tagged leftovers and the deploy
/// succeeds with v2 serving; `cutover status` lists them; once the platform is back, `cutover resume`
/// stops them, clears the tags, and the fleet is as a clean deploy leaves it (old kept, stopped).
#[test]
fn manual_split_past_the_switch_leaves_what_it_cannot_stop_and_resume_finishes_it() {
    let wasm = example("js-manual-split", "js");
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("down.toml");
    let fly = config(&wasm)
        .set("cutover.params.split_percent", 10)
        .set("cutover.sim.scenario", scenario.to_str().unwrap())
        .write(dir.path().join("fly.toml"));
    let fly = fly.to_str().unwrap();
    let state = dir.path().join("state");
    let status =
        || -> Value { support::cutover(["status", "--config", fly, "--json"]).state(&state).run().json() };
    std::fs::write(
        &scenario,
        "promote_after = \"1s\"\n[fleet]\nmachines = 4\n[faults]\ndown_calls = [\"stop machine\"]\n",
    )
    .unwrap();
    let out = support::cutover(["deploy", "--config", fly]).state(&state).run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "succeeded although the old could not be stopped:\n{}",
        out.text()
    );
    assert!(out.text().contains("4 old machine(s) left to stop"), "{}", out.text());
    let s = status();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    let left = s["latest"]["leftovers"].as_array().unwrap();
    assert_eq!(left.len(), 4, "{s}");
    assert!(left.iter().all(|l| l["todo"] == "stop by v2"), "{s}");

    std::fs::write(&scenario, "promote_after = \"1s\"\n[fleet]\nmachines = 4\n").unwrap();
    let out = support::cutover(["resume", "--config", fly]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("Finished 4 leftover machine(s)"), "{}", out.text());
    let s = status();
    assert_eq!(s["latest"]["leftovers"], serde_json::json!([]), "{s}");
    assert_eq!(s["fleet"]["leftovers"], serde_json::json!([]), "{s}");
    assert_eq!(s["fleet"]["by_version"], serde_json::json!([[1, 4], [2, 4]]), "old kept: {s}");
    assert_eq!((s["fleet"]["serving"].as_u64(), s["fleet"]["stopped"].as_u64()), (Some(4), Some(4)), "{s}");
}

// ---- templates ----------------------------------------------------------------------------------

/// Scaffold sdk/<lang>/template as `cutover new` does (placeholders filled, the contract in wit/, the
/// SDK in vendor/cutover-sdk), build it with its manifest's command and load it with `cutover inspect`.
fn template_builds(lang: &str, name: &str) {
    let root = support::root();
    let sdk = root.join("sdk").join(lang);
    let dir = tempfile::tempdir().unwrap();
    let out =
        support::cutover(["new", name, "--lang", lang]).state(dir.path().join("state")).cwd(dir.path()).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let project = dir.path().join(name);
    assert!(project.join("wit").is_dir() && project.join("vendor/cutover-sdk").is_dir(), "{}", out.text());
    assert!(!project.join("vendor/cutover-sdk/node_modules").exists(), "installed packages are not copied");
    if lang == "js" {
        // What `npm install` in the project would give, without the network.
        std::os::unix::fs::symlink(sdk.join("node_modules"), project.join("node_modules")).unwrap();
    }
    // The project's own test: `cutover build`, then `cutover verify` (builds take about a minute).
    let path = std::env::join_paths(
        std::iter::once(venv_bin())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let out =
        support::script(project.join("test.sh")).env("PATH", path).state(dir.path().join("state")).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains(&format!("PASS: {name} kept every invariant")), "{}", out.text());
    let wasm = project.join(format!("{name}.wasm"));
    let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).state(dir.path()).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let v: Value = out.json();
    assert_eq!(v["strategy"]["name"], name);
    // New projects build against contract 0.2 (wit/v0.2), with the metrics interface.
    assert_eq!(v["contract_version"], "0.2.0", "{v}");
    assert!(
        v["imports"].as_array().unwrap().iter().any(|i| i == "cutover:strategy/metrics@0.2.0"),
        "a 0.2 component imports metrics: {v}"
    );
    let language = if lang == "js" { "JavaScript" } else { "Python" };
    assert!(v["toolchain"].to_string().contains(language), "inspect tells the toolchain: {}", v["toolchain"]);
}

#[test]
fn python_template_builds_and_loads() {
    template_builds("python", "my-py-strategy");
}

#[test]
fn javascript_template_builds_and_loads() {
    template_builds("js", "my-js-strategy");
}

// ---- every example, in every language ---------------------------------------------------------------

/// The Rust example, built by `cutover build` from its manifest (offline, into the target directory
/// the scaffold tests share).
pub(crate) fn rust_example() -> PathBuf {
    let dir = support::root().join("examples/strategies/rust-drain-by-load");
    let out = support::cutover(["build"]).arg(&dir).offline_strategy_builds().run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    // "Built NAME: PATH (N bytes)"
    let stdout = out.stdout_text();
    let line = stdout.lines().find(|l| l.starts_with("Built ")).unwrap_or_else(|| panic!("{stdout}"));
    PathBuf::from(line.split_once(": ").unwrap().1.rsplit_once(" (").unwrap().0)
}

/// Every example strategy, built from source: (name, component).
fn every_example() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("rust-drain-by-load", rust_example()),
        ("python-region-by-region", example("python-region-by-region", "python")),
        ("js-manual-split", example("js-manual-split", "js")),
    ]
}

#[test]
fn every_example_passes_verify() {
    let state = tempfile::tempdir().unwrap();
    for (name, wasm) in every_example() {
        let mut args = vec!["verify", wasm.to_str().unwrap()];
        if name == "js-manual-split" {
            // It keeps the old release stopped so that `cutover rollback` is a switch.
            args.push("--allow-standby");
        }
        let out = support::cutover(&args).state(state.path()).run();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", out.text());
    }
}

/// The example app on the local platform (its fly.toml, running the app's debug build), as
/// tests/local.rs runs it.
fn local_app(dir: &Path) -> PathBuf {
    Toml::example_app()
        .set("cutover.local.command", support::example_app_binary())
        .write(dir.join("fly.toml"))
}

/// Each example deploys the example app on the local platform under load (`cutover demo`: real
/// processes, real proxy, new connections and keep-alive) without a failed request. The manual split
/// waits at its gate until `cutover promote split` (sent from here, as an operator would).
#[test]
fn every_example_deploys_on_the_local_platform_without_a_failed_request() {
    for (name, wasm) in every_example() {
        let dir = tempfile::tempdir().unwrap();
        let fly = local_app(dir.path());
        let fly = fly.to_str().unwrap();
        let state = dir.path().join("state");
        let demo = support::cutover([
            "demo",
            "--config",
            fly,
            "--strategy",
            wasm.to_str().unwrap(),
            "--rate",
            "100",
            "--json",
        ])
        .state(&state)
        .spawn(Stdio::piped(), Stdio::piped());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let promoter = (name == "js-manual-split").then(|| {
            let (done, state, fly) = (done.clone(), state.clone(), fly.to_string());
            std::thread::spawn(move || {
                // Until the deploy runs, `promote` has nothing to promote and says so; while the demo
                // launches v1, the running deploy is that launch (a named gate would be kept for it).
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let out = support::cutover(["promote", "split", "--config", &fly]).state(&state).run();
                    if out.status.success() && out.stdout_text().contains("manual-split)") {
                        return true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                false
            })
        });
        let out = demo.wait_with_output().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(p) = promoter {
            assert!(p.join().unwrap(), "{name}: the gate was never promoted: {}", out.text());
        }
        assert_eq!(out.status.code(), Some(0), "{name}: {}", out.text());
        let report: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{name}: {e}: {}", out.text()));
        let during = &report["during_deploy"];
        assert!(during["requests"].as_u64().unwrap() > 10, "{name}: too little traffic: {report:#}");
        assert_eq!(during["failed"], 0, "{name}: {report:#}");
        assert_eq!(report["overall"]["failed"], 0, "{name}: {report:#}");
    }
}
