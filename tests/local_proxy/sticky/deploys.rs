//! Sticky sessions under real deploys: the example app on the local platform, a canary held at its
//! 20% step by a manual gate and a bluegreen switch, with 60 session clients (each with its cookie
//! jar) under continuous load. What is counted is what a user would notice: an answer from the old
//! release after the new one. The counts are printed (`--nocapture` shows them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cutover::loadgen::{Load, LoadReport, LoadSpec, Regressions, Sample, regressions};

use crate::local::{App, daemon_http, daemon_url, example_app, fleet, get_json};
use crate::support::OutputExt;

/// Session clients, and their requests per second in all (5 each).
const CLIENTS: usize = 60;
const RATE: u32 = 300;

/// The example app with a canary that waits at a manual gate at 20%.
fn app(sticky: bool) -> App {
    App::new(
        example_app()
            .set("cutover.local.sticky_sessions", sticky)
            .set("cutover.params.steps", [20, 50])
            .set("cutover.params.manual_gates", [20])
            .set("cutover.params.step_pause", "1s"),
    )
}

/// The first release deployed, and session load through the proxy (every client pinned to it, when
/// sticky, before anything else happens).
async fn first_release_under_load(app: &App) -> Load {
    let out = app.run(&["deploy", "--platform", "local"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let (proxy, _) = fleet(app, "hello-cutover").await;
    let target = proxy.parse().unwrap_or_else(|e| panic!("the proxy's address {proxy:?}: {e}"));
    let load = Load::start(LoadSpec { workers: CLIENTS, sessions: true, ..LoadSpec::new(target, RATE) });
    tokio::time::sleep(Duration::from_secs(2)).await;
    load
}

/// Runs a canary under `load` and holds its 20% step for a few seconds. Returns the window the step
/// was held (after every client sent at least once under the step's weights) and the canary's
/// version.
async fn canary_held_at_20(app: &App, load: &Load) -> ((Duration, Duration), u64) {
    let deploy =
        tokio::spawn(app.cutover(&["deploy", "--platform", "local", "--strategy", "canary"]).run_async());
    let (url, http) = (daemon_url(app), daemon_http(app));
    let mut canary = None;
    for _ in 0..1200 {
        let weights = get_json(&http, &format!("{url}/cutover/v1/apps/hello-cutover/weights")).await;
        canary = weights
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["percent"] == 20)
            .and_then(|w| w["version"].as_u64());
        if canary.is_some() || deploy.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let canary = canary.unwrap_or_else(|| panic!("the canary never reached its 20% step"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let from = load.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let to = load.elapsed();
    let out = app.run(&["promote"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let out = deploy.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    ((from, to), canary)
}

/// The answers sent in `[from, to)`.
fn sent_in(report: &LoadReport, (from, to): (Duration, Duration)) -> Vec<Sample> {
    report.samples.iter().filter(|s| s.sent >= from && s.sent < to).cloned().collect()
}

/// Each client's releases among `samples`.
fn releases_per_client(samples: &[Sample]) -> BTreeMap<usize, BTreeSet<u64>> {
    let mut out: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for s in samples {
        if let Some(v) = s.version {
            out.entry(s.client).or_default().insert(v);
        }
    }
    out
}

fn show(what: &str, r: &Regressions) {
    eprintln!(
        "{what}: {} of {} clients saw the old release after the new one, in {} answers",
        r.clients_regressed, r.clients, r.answers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sticky_sessions_no_client_goes_back_during_a_canary_or_a_bluegreen_switch() {
    let app = app(true);
    let load = first_release_under_load(&app).await;
    let (held, canary) = canary_held_at_20(&app, &load).await;
    let after_canary = load.elapsed();
    let out = app.run(&["deploy", "--platform", "local", "--strategy", "bluegreen"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let bluegreen = (after_canary, load.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.stop().await;

    // While the step held, every client stayed with the one release it had; some had the canary.
    let during = sent_in(&report, held);
    let per_client = releases_per_client(&during);
    let on_canary = per_client.values().filter(|v| v.contains(&canary)).count();
    eprintln!(
        "canary v{canary} held at 20%: {} answers, {} of {} clients on the canary",
        during.len(),
        on_canary,
        per_client.len()
    );
    assert_eq!(per_client.len(), CLIENTS, "every client was answered while the step held");
    let mixed: Vec<_> = per_client.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(mixed.is_empty(), "clients served by both releases while the step held: {mixed:?}");
    assert!((1..CLIENTS).contains(&on_canary), "{on_canary} of {CLIENTS} clients on the canary at 20%");

    // No client got an older release after a newer one, at any point: canary, promotion, switch.
    let whole = report.regressions();
    show("sticky, canary then bluegreen", &whole);
    show("sticky, during the canary step", &regressions(&during));
    assert_eq!(whole.clients, CLIENTS);
    assert_eq!(whole.answers, 0, "{whole:?}");
    // The switch happened under this load: the bluegreen's old and new releases both answered.
    let switch = sent_in(&report, bluegreen);
    let versions: BTreeSet<u64> = switch.iter().filter_map(|s| s.version).collect();
    eprintln!("bluegreen: {} answers from releases {versions:?}", switch.len());
    assert!(versions.len() >= 2 && versions.contains(&canary), "{versions:?}");
    let failed = report.all().failed;
    eprintln!("failed requests over the whole run: {failed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_sticky_sessions_the_same_canary_sends_clients_back() {
    // The counting can fail: the same load, the same canary, no cookie.
    let app = app(false);
    let load = first_release_under_load(&app).await;
    let (held, canary) = canary_held_at_20(&app, &load).await;
    let report = load.stop().await;
    let during = sent_in(&report, held);
    let r = regressions(&during);
    show(&format!("not sticky, canary v{canary} at 20%"), &r);
    assert!(r.answers > 0 && r.clients_regressed > 0, "{r:?}");
    let mixed = releases_per_client(&during).values().filter(|v| v.len() > 1).count();
    eprintln!("not sticky: {mixed} of {CLIENTS} clients served by both releases while the step held");
    assert!(mixed > 0);
}
