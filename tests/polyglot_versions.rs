//! Both contract versions in every language, in one run: the 0.1 component committed as bytes, the
//! three 0.1 examples (Rust, Python, JavaScript, built as they always were) and a 0.2 strategy in each
//! language (in Rust the built-in canary with its metric gate on, written with the Rust SDK, and
//! `tests/guests/metered`; `python-metered` and `js-metered`, on the SDKs' metrics wrappers) load,
//! `cutover inspect` shows their version, and they deploy on the simulator (the 0.2 ones judged from a
//! scenario's `[[metrics]]` series); every one but `metered` passes `cutover verify`
//! (that guest updates the whole fleet at once, on purpose small: it is the contract's test, not a
//! strategy). A component declaring 0.3 is refused with the exact mismatch.
//!
//! And what the SDKs make of a `deploy` that lets something other than a contract error escape — a
//! batch call's failure, a plain exception, a thrown value: a failed deploy whose error names the
//! failed machines (or the exception and where it was raised), never componentize-py's
//! `KeyError(<class 'list'>)` nor a wasm backtrace.
//!
//! Python and JavaScript components are built with the pinned toolchains `sdk/setup` installs and
//! cached as `examples_polyglot` caches them (by a hash of their sources, SDK and contract).

use crate::examples_polyglot::{build, example, rust_example};
use crate::support::{self, OutputExt, Toml};

use serde_json::Value;
use std::path::{Path, PathBuf};

/// A Python or JavaScript test guest under tests/guests, built (or taken from the cache).
fn polyglot_guest(name: &str, lang: &str) -> PathBuf {
    let root = support::root();
    let dir = root.join("tests/guests").join(name);
    build(&dir, &[dir.clone(), root.join("sdk").join(lang), root.join("wit")])
}

fn metered() -> PathBuf {
    support::guest("metered");
    support::guest_target().join("wasm32-wasip2/release/metered.wasm")
}

/// Error ratios of v1 (the baseline) and v2 (the canary) for the judge; `v2` is the canary's.
fn series(v2: &str) -> String {
    format!(
        "seed = 5\npromote_after = \"1s\"\n[fleet]\nmachines = 4\n\
         [[metrics]]\nmatch = 'version=\"1\"'\nlabels = {{ version = \"1\" }}\n\
         values = [0.010, 0.012, 0.009, 0.011, 0.010, 0.013, 0.008, 0.011]\n\
         [[metrics]]\nmatch = 'version=\"2\"'\nlabels = {{ version = \"2\" }}\nvalues = {v2}\n"
    )
}

const HEALTHY: &str = "[0.011, 0.010, 0.012, 0.009, 0.010, 0.011, 0.013, 0.008]";
const BROKEN: &str = "[0.061, 0.058, 0.064, 0.059, 0.060, 0.062, 0.057, 0.063]";

/// `cutover deploy` of `strategy` on the simulator under `scenario` (TOML text) with `params` set in
/// the example app's config; the exit code, the JSON events and the whole output.
fn deploy(strategy: &Path, scenario: &str, params: &[(&str, &str)]) -> (Option<i32>, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    let mut config = Toml::example_app();
    for (k, v) in params {
        config = config.set(&format!("cutover.params.{k}"), *v);
    }
    let config = config.write(dir.path().join("fly.toml"));
    let out = support::cutover([
        "deploy",
        "--config",
        config.to_str().unwrap(),
        "--platform",
        "sim",
        "--strategy",
        strategy.to_str().unwrap(),
        "--scenario",
        path.to_str().unwrap(),
        "--json",
    ])
    .state(dir.path().join("state"))
    .run();
    (out.status.code(), out.json_lines(), out.text())
}

fn finished(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "deploy_finished", "{last}");
    last
}

fn calls<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == "host_call" && e["call"] == name).collect()
}

/// One component of the run: its name, path, the contract version it declares and whether `cutover
/// verify` is run on it (with which extra flags).
struct Component {
    name: &'static str,
    wasm: PathBuf,
    version: &'static str,
    verify: Option<&'static [&'static str]>,
    /// Parameters its deploy on the simulator is given (`cutover.params.*`).
    params: &'static [(&'static str, &'static str)],
}

/// The built-in canary with its error-ratio gate on: the Rust SDK's 0.2 metric gate, as a strategy
/// author gets it (its template matches the scenario's series by their `version` label).
const CANARY_GATE: &[(&str, &str)] = &[("metric_error_query", "errors{version=\"{version}\"}")];

fn every_component(scratch: &Path) -> Vec<Component> {
    let c = |name, wasm, version, verify| Component { name, wasm, version, verify, params: &[] };
    let canary = scratch.join("canary.wasm");
    std::fs::write(&canary, support::builtin("canary")).unwrap();
    vec![
        Component { params: CANARY_GATE, ..c("canary (built-in, Rust SDK)", canary, "0.2.0", Some(&[][..])) },
        c("fixture", support::root().join("tests/fixtures/strategy-0.1.wasm"), "0.1.0", Some(&[][..])),
        c("rust-drain-by-load", rust_example(), "0.1.0", Some(&[][..])),
        c("python-region-by-region", example("python-region-by-region", "python"), "0.1.0", Some(&[][..])),
        // It keeps the old release stopped so that `cutover rollback` is a switch.
        c("js-manual-split", example("js-manual-split", "js"), "0.1.0", Some(&["--allow-standby"][..])),
        c("metered", metered(), "0.2.0", None),
        c("python-metered", polyglot_guest("python-metered", "python"), "0.2.0", Some(&[][..])),
        c("js-metered", polyglot_guest("js-metered", "js"), "0.2.0", Some(&[][..])),
    ]
}

#[test]
fn every_version_in_every_language_loads_verifies_and_deploys() {
    let state = tempfile::tempdir().unwrap();
    for c in every_component(state.path()) {
        let wasm = c.wasm.to_str().unwrap();
        let out = support::cutover(["inspect", wasm, "--json"]).state(state.path()).run();
        assert_eq!(out.status.code(), Some(0), "{}: {}", c.name, out.text());
        let v: Value = out.json();
        assert_eq!(v["contract_version"], c.version, "{}: {v}", c.name);
        let has_metrics =
            v["imports"].as_array().unwrap().iter().any(|i| i == "cutover:strategy/metrics@0.2.0");
        assert_eq!(has_metrics, c.version == "0.2.0", "{}: metrics only in 0.2: {v}", c.name);

        if let Some(flags) = c.verify {
            let mut args = vec!["verify", wasm];
            args.extend_from_slice(flags);
            let out = support::cutover(&args).state(state.path()).run();
            assert_eq!(out.status.code(), Some(0), "{}: {}", c.name, out.text());
            assert!(out.stdout_text().contains("kept every invariant"), "{}: {}", c.name, out.text());
        }

        // On the simulator, with the scenario's series (a 0.1 strategy never asks for them; the
        // manual split's gate is promoted by the scenario's operator).
        let (code, events, text) = deploy(&c.wasm, &series(HEALTHY), c.params);
        assert_eq!(code, Some(0), "{}: {text}", c.name);
        let end = finished(&events);
        assert_eq!(end["outcome"], "succeeded", "{}: {end}", c.name);
        assert_eq!(end["fleet"]["serving"], 4, "{}: {end}", c.name);
        let judged = calls(&events, "metrics.judge");
        if c.version == "0.2.0" {
            assert!(!judged.is_empty(), "{}: the canary is judged: {text}", c.name);
            for j in &judged {
                assert_eq!(j["reply"]["judgment"]["outcome"], "pass", "{}: {j}", c.name);
            }
            let ranges = calls(&events, "metrics.query-range").len();
            assert_eq!(ranges, 2 * judged.len(), "{}: canary and baseline at each judgment", c.name);
        } else {
            assert!(judged.is_empty() && calls(&events, "metrics.query").is_empty(), "{}", c.name);
        }
    }

    // A component built against 0.3 is refused, naming both sides.
    let future = support::guest_target().join("wasm32-wasip2/release/future.wasm");
    support::guest("future");
    for cmd in ["inspect", "verify"] {
        let out = support::cutover([cmd, future.to_str().unwrap()]).state(state.path()).run();
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", out.text());
        assert!(
            out.stderr_text().contains(
                "this strategy targets cutover:strategy@0.3.0; this host implements 0.1.x and 0.2.x"
            ),
            "{cmd}: {}",
            out.text()
        );
    }
}

/// The SDKs' metrics wrappers decide: a canary whose error ratio rose is judged `fail`, removed, and
/// nothing else moves, in Python and in JavaScript.
#[test]
fn the_sdks_metric_gate_stops_a_release_whose_errors_rose() {
    for (name, lang) in [("python-metered", "python"), ("js-metered", "js")] {
        let (code, events, text) = deploy(&polyglot_guest(name, lang), &series(BROKEN), &[]);
        assert_eq!(code, Some(1), "{name}: {text}");
        let end = finished(&events);
        assert!(
            end["error"].as_str().unwrap().contains("the metric judge failed the canary"),
            "{name}: {end}"
        );
        assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 4]]), "{name}: canary gone: {end}");
        let judged = calls(&events, "metrics.judge");
        assert_eq!(judged[0]["reply"]["judgment"]["outcome"], "fail", "{name}: {}", judged[0]);
        assert!(calls(&events, "machines.update").is_empty(), "{name}: nothing else moved");
    }
}

/// What a new author's mistakes become: a batch call's failure let out of `deploy` (the platform's
/// stop is down, so every machine's stop fails), a plain exception, a thrown non-error value. Each
/// fails the deploy with a contract error that says what happened; the fleet is untouched.
#[test]
fn an_error_escaping_deploy_fails_it_naming_the_machines_in_python_and_javascript() {
    let down = "[fleet]\nmachines = 3\n[faults]\ndown_calls = [\"stop machine\"]\n";
    for (name, lang, exception, file) in [
        ("python-metered", "python", "ValueError: 3 machines is not what I expected", "app.py:"),
        ("js-metered", "js", "TypeError: 3 machines is not what I expected", "deploy@"),
    ] {
        let wasm = polyglot_guest(name, lang);
        for (escape, expected) in [
            ("batch", "deploy let a batch failure escape: 3 machine(s) failed: "),
            ("exception", exception),
            ("value", "not a contract error"),
        ] {
            let (code, events, text) = deploy(&wasm, down, &[("escape", escape)]);
            let what = format!("{name}, escape = {escape}");
            assert_eq!(code, Some(1), "{what}: a failed deploy, not a crash: {text}");
            for crash in ["KeyError", "backtrace", "crashed", "unreachable"] {
                assert!(!text.contains(crash), "{what}: `{crash}` in the output: {text}");
            }
            let end = finished(&events);
            let error = end["error"].as_str().unwrap();
            assert!(error.contains(&format!("strategy {name} reported: ")), "{what}: {error}");
            assert!(error.contains(expected), "{what}: {error}");
            assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 3]]), "{what}: {end}");
            if escape == "batch" {
                // Every machine is named, with the platform's reason.
                let listed = &calls(&events, "machines.list")[0]["reply"]["machines"];
                for m in listed.as_array().unwrap() {
                    let id = m["id"].as_str().unwrap();
                    assert!(
                        error.contains(&format!("{id}: platform error: stop machine")),
                        "{what}: {id}: {error}"
                    );
                }
                assert!(
                    error.starts_with("strategy") && error.contains("reported: platform error"),
                    "{error}"
                );
            }
            if escape == "exception" {
                assert!(error.contains(file), "{what}: where it was raised: {error}");
            }
        }
    }
}

/// The SDKs serve 0.1 too: the same Python and JavaScript guests built against the repository's `wit`
/// (0.1.0) are 0.1 components without `metrics`, deploy as before, and their metrics calls say
/// clearly that they need 0.2 (the guests treat that like "no metrics server" and gate on checks).
#[test]
fn the_sdks_build_0_1_components_whose_metrics_calls_say_they_need_0_2() {
    let root = support::root();
    for (name, lang) in [("python-metered", "python"), ("js-metered", "js")] {
        // A copy of the guest whose manifest points at the 0.1 contract (and at the SDK by absolute path).
        let copy = tempfile::tempdir().unwrap();
        let source = root.join("tests/guests").join(name);
        for entry in std::fs::read_dir(&source).unwrap().map(|e| e.unwrap().path()) {
            let file = entry.file_name().unwrap().to_string_lossy().into_owned();
            if entry.is_file() && !file.ends_with(".wasm") {
                let text = std::fs::read_to_string(&entry).unwrap();
                let text = if file == "cutover-strategy.toml" {
                    let sdk = root.join("sdk").join(lang);
                    text.replace(&format!("name = \"{name}\""), &format!("name = \"{name}-0.1\""))
                        .replace("../../../wit/v0.2", root.join("wit").to_str().unwrap())
                        .replace(&format!("../../../sdk/{lang}"), sdk.to_str().unwrap())
                } else {
                    text
                };
                std::fs::write(copy.path().join(&file), text).unwrap();
            }
        }
        let wasm =
            build(copy.path(), &[copy.path().to_path_buf(), root.join("sdk").join(lang), root.join("wit")]);
        let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).run();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", out.text());
        let v: Value = out.json();
        assert_eq!(v["contract_version"], "0.1.0", "{name}: {v}");
        assert!(!v["imports"].to_string().contains("metrics"), "{name}: no metrics in 0.1: {v}");

        let (code, events, text) = deploy(&wasm, &series(HEALTHY), &[]);
        assert_eq!(code, Some(0), "{name}: {text}");
        assert_eq!(finished(&events)["outcome"], "succeeded", "{name}");
        assert!(calls(&events, "metrics.query").is_empty(), "{name}: a 0.1 component cannot ask");
        assert!(
            text.contains(
                "metrics needs contract cutover:strategy@0.2.0, and this strategy was built against 0.1.0"
            ),
            "{name}: the SDK says why: {text}"
        );
    }
}
