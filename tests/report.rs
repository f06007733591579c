//! `cutover report`: a release's timeline picture from the journal, for every built-in strategy on the
//! simulator (parsed back as XML: a lane per machine, the legend, the failure marker of a failed
//! release), counts in place of lanes for 10,000 machines, the HTML page, and bad input (an unknown
//! release, a file that cannot be written, a name that is neither .svg nor .html) exiting 2; and on the
//! local platform under load, the traffic readings and charts of a strategy that reads no traffic
//! itself.

use crate::support::{self, OutputExt};

use cutover::core::events::EventKind;
use cutover::driver::StateDir;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn example() -> String {
    support::root().join("examples/app/fly.toml").display().to_string()
}

fn scenario(name: &str) -> String {
    support::root().join("examples/app/scenarios").join(name).display().to_string()
}

/// Every machine a deploy's JSON events name in an answer: listed, or made by a clone.
fn machines(events: &[Value]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for e in events.iter().filter(|e| e["event"] == "host_call") {
        for m in e["reply"]["machines"].as_array().into_iter().flatten() {
            ids.insert(m["id"].as_str().expect("an id").to_string());
        }
        for c in e["reply"]["cloned"].as_array().into_iter().flatten() {
            if let Some(id) = c["Ok"].as_str() {
                ids.insert(id.to_string());
            }
        }
    }
    ids
}

/// Every `<text>` of the SVG at `path`, which must parse as XML with an `<svg>` root.
fn texts(path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).expect("the picture was written");
    let doc = roxmltree::Document::parse(&svg).expect("the picture is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim_matches('\n').to_string())
        .collect()
}

/// Deploy the example on the simulator with `strategy` (and `scenario`), then draw the latest release:
/// the deploy's events and the picture's texts.
fn deploy_and_report(
    strategy: &str,
    scenario_file: &str,
    state: &Path,
    out: &Path,
) -> (Vec<Value>, Vec<String>) {
    let deploy = support::cutover([
        "deploy",
        "--json",
        "--strategy",
        strategy,
        "--scenario",
        &scenario(scenario_file),
    ])
    .config(example())
    .state(state)
    .run();
    assert!(matches!(deploy.status.code(), Some(0 | 1)), "{}", deploy.text());
    let report = support::cutover(["report", "--out"]).arg(out).config(example()).state(state).run();
    assert_eq!(report.status.code(), Some(0), "{}", report.text());
    assert!(report.stdout_text().contains(&out.display().to_string()), "{}", report.text());
    (deploy.json_lines(), texts(out))
}

#[test]
fn every_builtin_draws_a_lane_per_machine() {
    for strategy in cutover::builtins::names() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("{strategy}.svg"));
        let (events, texts) = deploy_and_report(strategy, "happy.toml", &dir.path().join("state"), &out);
        let ids = machines(&events);
        assert!(ids.len() >= 10, "{strategy}: {ids:?}");
        for id in &ids {
            assert!(texts.contains(id), "{strategy}: no lane for machine {id} in {texts:?}");
        }
        for state in ["serving", "cordoned", "starting", "stopped", "destroyed", "v2 target", "v1 previous"] {
            assert!(texts.iter().any(|t| t == state), "{strategy}: no legend entry {state:?}");
        }
        assert!(texts.iter().any(|t| t.starts_with("succeeded in")), "{strategy}: {texts:?}");
        assert!(!texts.iter().any(|t| t.starts_with("failed")), "{strategy}: {texts:?}");
    }
}

#[test]
fn a_failed_rolling_deploy_marks_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("failed.svg");
    let (events, texts) =
        deploy_and_report("rolling", "failing-release.toml", &dir.path().join("state"), &out);
    let end = events.last().expect("events");
    assert_eq!(end["outcome"], "failed");
    let why = end["error"].as_str().expect("an error");
    // The status wraps: its lines follow one another.
    let at = texts.iter().position(|t| t.starts_with("failed after")).unwrap_or_else(|| panic!("{texts:?}"));
    let status: String = texts[at..at + 3].concat();
    assert!(status.contains(why), "{status} / {why}");
}

#[test]
fn ten_thousand_machines_become_counts_and_html_has_the_facts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("large.svg");
    let (_, texts) = deploy_and_report("rolling", "large.toml", &state, &out);
    assert!(texts.iter().any(|t| t == "10000 machines: counts per release and state"), "{texts:?}");
    // No lane labels: counts.
    assert!(texts.len() < 200, "{} texts", texts.len());
    let page = dir.path().join("large.html");
    let report = support::cutover(["report", "#1", "--out"]).arg(&page).config(example()).state(&state).run();
    assert_eq!(report.status.code(), Some(0), "{}", report.text());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"), "{html:.200}");
    assert!(html.contains("<th>strategy</th><td>rolling"), "{html:.2000}");
}

#[test]
fn bad_input_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let report = |release: Option<&str>, out: PathBuf| {
        let mut c = support::cutover(["report"]);
        if let Some(r) = release {
            c = c.arg(r);
        }
        c.arg("--out").arg(out).config(example()).state(&state).run()
    };
    let nothing = report(None, dir.path().join("a.svg"));
    assert_eq!(nothing.status.code(), Some(2), "{}", nothing.text());
    assert!(
        nothing.stderr_text().contains("hello-cutover has no release yet in the journal"),
        "{}",
        nothing.text()
    );

    let deploy = support::cutover(["deploy"]).config(example()).state(&state).run();
    assert_eq!(deploy.status.code(), Some(0), "{}", deploy.text());
    let unknown = report(Some("#9"), dir.path().join("a.svg"));
    assert_eq!(unknown.status.code(), Some(2), "{}", unknown.text());
    assert!(
        unknown
            .stderr_text()
            .contains("hello-cutover has no release #9 in the journal; its releases are #1 to #1"),
        "{}",
        unknown.text()
    );
    let garbled = report(Some("seven"), dir.path().join("a.svg"));
    assert_eq!(garbled.status.code(), Some(2), "{}", garbled.text());
    assert!(garbled.stderr_text().contains("cannot read release `seven`"), "{}", garbled.text());
    let png = report(None, dir.path().join("a.png"));
    assert_eq!(png.status.code(), Some(2), "{}", png.text());
    assert!(
        png.stderr_text().contains(
            "a.png: cannot tell the picture's format from the name: expected a name ending in .svg or .html"
        ),
        "{}",
        png.text()
    );
    let unwritable = dir.path().join("no-such-dir").join("a.svg");
    let out = report(None, unwritable.clone());
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(
        out.stderr_text().contains(&format!("cannot write the picture to {}", unwritable.display())),
        "{}",
        out.text()
    );
    assert!(!dir.path().join("a.svg").exists() && !dir.path().join("a.png").exists());
}

/// A rolling deploy on the local platform under the demo's load: its strategy never calls
/// `traffic.stats`, yet the journal holds the driver's readings of both releases, beside the events
/// (which stay numbered 0, 1, 2, … as if none had been taken), and the picture has request rate,
/// errors and p99 under the lanes.
#[test]
fn a_local_rolling_deploy_under_load_has_traffic_series_per_release() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fly.toml");
    support::Toml::example_app().set("cutover.local.command", support::example_app_binary()).write(&config);
    let state = dir.path().join("state");
    let demo = support::cutover(["demo", "--strategy", "rolling", "--rate", "100", "--json"])
        .config(config.display().to_string())
        .state(&state)
        .run();
    let _ = support::cutover(["local", "down"]).config(config.display().to_string()).state(&state).run();
    assert_eq!(demo.status.code(), Some(0), "{}", demo.text());

    let journal = StateDir::at(&state).journal().unwrap();
    let release = journal.releases("hello-cutover").unwrap().pop().expect("a release");
    assert_eq!(release.strategy, "rolling");
    let events = journal.events(release.id).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>(), "the readings took no event number");
    assert!(!events.iter().any(|e| matches!(e.kind, EventKind::TrafficSampled { .. })));
    let readings = journal.samples(release.id).unwrap();
    let served = |v: u64| {
        readings.iter().any(|e| {
            matches!(&e.kind, EventKind::TrafficSampled { version, window_ms: 1000, stats }
                if *version == v && stats.requests > 0)
        })
    };
    let previous = release.previous.as_ref().expect("a previous release").version;
    for v in [previous, release.target.version] {
        assert!(served(v), "no reading of v{v} with traffic in {readings:?}");
    }

    let out = dir.path().join("rolling.svg");
    let report = support::cutover(["report", "--out"])
        .arg(&out)
        .config(config.display().to_string())
        .state(&state)
        .run();
    assert_eq!(report.status.code(), Some(0), "{}", report.text());
    let texts = texts(&out);
    for chart in ["requests per second", "errors (% of requests)", "p99 latency (ms)"] {
        assert!(texts.iter().any(|t| t == chart), "no {chart:?} chart in {texts:?}");
    }
}
