//! Contract versions side by side: a 0.1 component committed as bytes (`tests/fixtures`) loads,
//! passes `cutover verify` and deploys on the simulator; a 0.2 component's metric gate is answered
//! from the scenario's `[[metrics]]` series, journaled, and decides the deploy.

use crate::support::{self, OutputExt};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    support::root().join("tests/fixtures/strategy-0.1.wasm")
}

fn metered() -> PathBuf {
    support::guest("metered");
    support::guest_target().join("wasm32-wasip2/release/metered.wasm")
}

/// `cutover deploy` of `strategy` on the simulator under `scenario` (TOML text); the JSON events and
/// the exit code.
fn deploy(strategy: &Path, scenario: &str) -> (Option<i32>, Vec<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    let config = support::root().join("examples/app/fly.toml");
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
    .run();
    (out.status.code(), out.json_lines())
}

fn finished(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "deploy_finished", "{last}");
    last
}

fn calls<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == "host_call" && e["call"] == name).collect()
}

#[test]
fn the_0_1_fixture_loads_verifies_and_deploys() {
    let wasm = fixture();
    let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let v: Value = out.json();
    assert_eq!(v["contract_version"], "0.1.0", "{v}");
    assert_eq!(v["strategy"]["name"], "rolling");

    let out = support::cutover(["verify", wasm.to_str().unwrap()]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());

    let (code, events) = deploy(&wasm, "seed = 3\n[fleet]\nmachines = 6\n");
    assert_eq!(code, Some(0), "{events:?}");
    let end = finished(&events);
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 6]]), "{end}");
}

#[test]
fn inspect_shows_a_0_2_component_s_version() {
    let wasm = metered();
    let out = support::cutover(["inspect", wasm.to_str().unwrap(), "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let v: Value = out.json();
    assert_eq!(v["contract_version"], "0.2.0", "{v}");
    assert!(v["imports"].as_array().unwrap().iter().any(|i| i == "cutover:strategy/metrics@0.2.0"), "{v}");
}

const SERIES: &str = r#"
seed = 5
[fleet]
machines = 4
[[metrics]]
match = 'version="1"'
labels = { version = "1" }
values = [0.010, 0.012, 0.009, 0.011, 0.010, 0.013, 0.008, 0.011]
"#;

#[test]
fn a_0_2_metric_gate_passes_a_healthy_release_from_the_scenario_series() {
    let healthy = format!(
        "{SERIES}[[metrics]]\nmatch = 'version=\"2\"'\nlabels = {{ version = \"2\" }}\n\
         values = [0.011, 0.010, 0.012, 0.009, 0.010, 0.011, 0.013, 0.008]\n"
    );
    let (code, events) = deploy(&metered(), &healthy);
    assert_eq!(code, Some(0), "{events:?}");
    let end = finished(&events);
    assert_eq!(end["outcome"], "succeeded", "{end}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[2, 4]]), "{end}");

    // Every query and the judgment are in the event log with their answers.
    let ranges = calls(&events, "metrics.query-range");
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0]["promql"], "error_ratio{version=\"2\"}");
    let points = ranges[0]["reply"]["series"][0]["points"].as_array().expect("series answered");
    assert_eq!(points.len(), 21, "five minutes every 15 s: {points:?}");
    assert_eq!(calls(&events, "metrics.query").len(), 1);
    let judge = calls(&events, "metrics.judge");
    assert_eq!(judge.len(), 1);
    assert_eq!(judge[0]["reply"]["judgment"]["outcome"], "pass", "{}", judge[0]);
}

#[test]
fn a_0_2_metric_gate_stops_a_release_whose_errors_rose() {
    let broken = format!(
        "{SERIES}[[metrics]]\nmatch = 'version=\"2\"'\nlabels = {{ version = \"2\" }}\n\
         values = [0.061, 0.058, 0.064, 0.059, 0.060, 0.062, 0.057, 0.063]\n"
    );
    let (code, events) = deploy(&metered(), &broken);
    assert_ne!(code, Some(0), "{events:?}");
    let end = finished(&events);
    assert_eq!(end["outcome"], "failed", "{end}");
    assert!(end["error"].as_str().unwrap_or_default().contains("metric judge failed the canary"), "{end}");
    // The canary is gone and nothing else moved.
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 4]]), "{end}");
    let judge = calls(&events, "metrics.judge");
    let j = &judge[0]["reply"]["judgment"];
    assert_eq!(j["outcome"], "fail", "{j}");
    assert!(j["p_value"].as_f64().unwrap() < 0.02 && j["effect_size"].as_f64().unwrap() > 0.04, "{j}");
    assert!(calls(&events, "machines.update").is_empty());
}

#[test]
fn without_series_a_metrics_query_is_unsupported_and_says_what_to_configure() {
    let (code, events) = deploy(&metered(), "seed = 5\n[fleet]\nmachines = 2\n");
    assert_ne!(code, Some(0));
    let query = calls(&events, "metrics.query");
    let failed = &query[0]["reply"]["failed"];
    assert_eq!(failed["kind"], "unsupported", "{failed}");
    assert!(failed["message"].as_str().unwrap().contains("[cutover.metrics] url"), "{failed}");
}

/// The sandbox policy grants queries as `metrics.*`: an `allow` list without them makes a query
/// `denied` before any server is asked; with them the query goes on (here to no server: `unsupported`).
#[tokio::test(start_paused = true)]
async fn metrics_queries_are_granted_by_the_sandbox_policy() {
    use cutover::core::events::{EventKind, HostCall, HostReply};
    use cutover::core::{ErrorKind, Grants};
    let runtime = support::runtime();
    let metered = support::guest("metered");
    for (allow, expected) in [
        (vec!["machines.*", "health.*", "traffic.*"], ErrorKind::Denied),
        (vec!["machines.*", "health.*", "metrics.*"], ErrorKind::Unsupported),
    ] {
        let allow: Vec<String> = allow.into_iter().map(String::from).collect();
        let grants = Grants::from_lists(Some(&allow), &[], None, None).unwrap();
        let opts = support::RunOptions { grants, collect_events: true, ..Default::default() };
        let world = support::world("[fleet]\nmachines = 2\n");
        let run = support::run_on_sim(&runtime, &metered, world, opts).await;
        let query = run.events.iter().find_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::MetricsQuery { .. }, reply, .. } => Some(reply.clone()),
            _ => None,
        });
        match query {
            Some(HostReply::Failed(e)) => assert_eq!(e.kind, expected, "{allow:?}: {e}"),
            other => panic!("{allow:?}: {other:?}"),
        }
        assert!(run.result.expect("the sandbox ran it").is_err(), "a gate without metrics fails the deploy");
    }
}
