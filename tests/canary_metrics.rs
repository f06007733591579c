//! The canary's metric gate end to end on the local platform: the example app as real processes behind
//! the proxy, load through the proxy (the loadgen crate), a real Prometheus (Debian's, started by
//! `.ci/prometheus`) scraping the machines through the daemon's discovery file, and the canary judging
//! each step's error ratio, canaries against stable, with the host's judge. What is checked is what
//! users and operators see: the deploy's verdict and reason, which release serves afterwards, what is
//! left running, and what the journal kept.

use crate::support::fake_prometheus::FakePrometheus;
use crate::support::{self, OutputExt, Toml};

use cutover::core::events::{Event, EventKind, HostCall, HostReply};
use cutover::driver::StateDir;
use cutover::loadgen::{Load, LoadSpec};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const APP: &str = "hello-cutover";

/// The error ratio of one side over the last 4 s: 5xx answers of `/` over all of them, by the
/// discovery file's labels (app, version, instance = machine id). No 5xx at all is a ratio of 0, not
/// an empty answer; no requests at all is NaN, which the host drops.
const ERROR_QUERY: &str = concat!(
    r#"sum(rate(http_requests_total{app="{app}",version=~"{version}",instance=~"{machines}",code=~"5.."}[4s]) or vector(0))"#,
    r#" / sum(rate(http_requests_total{app="{app}",version=~"{version}",instance=~"{machines}"}[4s]))"#
);

/// An app directory on the local platform; the daemon is stopped when it goes away.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn config(&self) -> PathBuf {
        self.dir.path().join("fly.toml")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn cutover(&self, args: &[&str]) -> support::Cutover {
        support::cutover(args).config(self.config()).state(self.state())
    }

    /// The journaled events of the app's latest release.
    fn journal(&self) -> Vec<Event> {
        let journal = StateDir::at(self.state()).journal().unwrap();
        let release = journal.releases(APP).unwrap().pop().expect("a release");
        journal.events(release.id).unwrap()
    }

    /// The proxy's address, from the daemon.
    async fn proxy(&self) -> std::net::SocketAddr {
        let local = self.state().join("local");
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(local.join("daemon.json")).unwrap()).unwrap();
        let token = std::fs::read_to_string(local.join("daemon.token")).unwrap();
        let status: Value = reqwest::Client::new()
            .get(format!("{}/cutover/v1/status", info["url"].as_str().unwrap()))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status["apps"][APP].as_str().unwrap().parse().unwrap()
    }

    fn fleet(&self) -> Value {
        let out = self.cutover(&["status", "--platform", "local", "--json"]).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        out.json::<Value>()["fleet"].clone()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.cutover(&["local", "down"]).run();
    }
}

/// The metrics range queries of `events` with their answers: (PromQL, points in the answer).
fn range_queries(events: &[Event]) -> Vec<(String, usize)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::MetricsRange { promql, .. }, reply, .. } => {
                let points = match reply {
                    HostReply::Series(s) => s.iter().map(|s| s.points.len()).sum(),
                    _ => 0,
                };
                Some((promql.clone(), points))
            }
            _ => None,
        })
        .collect()
}

/// The daemon up, a Prometheus scraping its discovery file, the config pointing the canary's error
/// gate at it, and the first release (v1, three machines) launched. `None`: no Prometheus here (and
/// not CI), the test is skipped.
fn app_with_prometheus(test: &str) -> Option<(App, support::prometheus::Prometheus)> {
    let app = App { dir: tempfile::tempdir().unwrap() };
    Toml::example_app().set("cutover.local.command", support::example_app_binary()).write(app.config());
    let out = app.cutover(&["local", "up"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let prom = support::prometheus::serve(test, &app.state().join("local/prometheus-targets.json"))?;
    Toml::read(app.config())
        .set("cutover.local.env.HELLO_ERROR_RATE", "0.05")
        .set("cutover.metrics.url", &prom.url)
        .set("cutover.params.steps", [50, 80])
        .set("cutover.params.step_pause", "15s")
        .set("cutover.params.metric_error_query", ERROR_QUERY)
        .set("cutover.params.metric_interval", "1s")
        .set("cutover.params.metric_error_min_effect", 0.01)
        // The proxy's own per-release statistics gate would see the 5% too: off, so the judge decides.
        .set("cutover.params.max_error_rate_increase", 1.0)
        .write(app.config());
    let out =
        app.cutover(&["deploy", "--platform", "local", "--image", "registry.fly.io/hello-cutover:v1"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    Some((app, prom))
}

fn deploy(app: &App, image: &str) -> support::Cutover {
    app.cutover(&["deploy", "--platform", "local", "--strategy", "canary", "--image", image, "--json"])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_answering_five_percent_errors_is_stopped_by_the_judge_and_a_healthy_one_passes() {
    let Some((app, _prom)) = app_with_prometheus("canary_judges_real_metrics") else { return };
    let load = Load::start(LoadSpec::new(app.proxy().await, 200));

    // v2: its image tag makes 5% of `/` answer 500; every health check passes.
    let out = deploy(&app, "registry.fly.io/hello-cutover:v2-errors").run_async().await;
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let events: Vec<Value> = out.json_lines();
    let failed = events.iter().rev().find_map(|e| e["error"].as_str()).unwrap_or_default().to_string();
    let text = out.text();
    assert!(
        text.contains(
            "canary gate failed at step 1/2 (50%): the metric judge failed the canary on error ratio"
        ),
        "stopped by the judge at the first step:\n{text}"
    );
    assert!(text.contains("v1 100% / v2 0%") && text.contains("the canary was removed"), "{failed}\n{text}");
    let fleet = app.fleet();
    assert_eq!(fleet["by_version"], serde_json::json!([[1, 3]]), "back to v1 alone: {fleet:#}");
    assert_eq!(fleet["serving"], 3, "{fleet:#}");
    // Every query is journaled with its answer: one step, canary and stable, both answered.
    let journaled = range_queries(&app.journal());
    assert_eq!(journaled.len(), 2, "{journaled:#?}");
    assert!(journaled[0].0.contains(r#"version=~"2""#) && journaled[1].0.contains(r#"version=~"1""#));
    assert!(journaled.iter().all(|(_, points)| *points > 0), "{journaled:#?}");

    // v3: healthy; every step is judged and passes.
    let out = deploy(&app, "registry.fly.io/hello-cutover:v3").run_async().await;
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let text = out.text();
    for step in ["step 1/2 (50%): error ratio over 15s: pass", "step 2/2 (80%): error ratio over 15s: pass"] {
        assert!(text.contains(step), "{step}:\n{text}");
    }
    let fleet = app.fleet();
    assert_eq!(fleet["by_version"], serde_json::json!([[3, 3]]), "{fleet:#}");
    assert_eq!(range_queries(&app.journal()).len(), 4, "two steps, two sides each");

    // After the bad canary, nothing but v1 and then v3 answered 500s: the load saw v2's errors only
    // while v2 was a canary.
    let report = load.stop().await;
    let v2_errors = report.samples.iter().filter(|s| s.version == Some(2) && !s.ok()).count();
    let others = report.samples.iter().filter(|s| s.version != Some(2) && s.status == Some(500)).count();
    assert!(v2_errors > 0, "the canary's errors reached users during its step");
    assert_eq!(others, 0, "only the bad release answered 500");
}

/// A deploy killed after its first step was judged, then `cutover resume`d: the strategy is replayed
/// through the journal, so the step's queries are answered from it and not asked again; only the
/// second step asks. The metrics come from the fake Prometheus, which records every question (a real
/// one cannot say what it was asked), so this runs everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_canary_resumes_with_its_journaled_answers_and_asks_only_what_is_left() {
    let prom = FakePrometheus::start().await;
    prom.state.set("1", &[0.010, 0.012, 0.008, 0.011, 0.009]);
    prom.state.set("2", &[0.011, 0.009, 0.012, 0.010, 0.008]);
    let app = App { dir: tempfile::tempdir().unwrap() };
    Toml::example_app()
        .set("cutover.local.command", support::example_app_binary())
        // The killed deploy's leases lapse before the resume may go on.
        .set("cutover.lease_ttl", "2s")
        .set("cutover.metrics.url", &prom.url)
        .set("cutover.params.steps", [50, 80])
        .set("cutover.params.step_pause", "3s")
        .set(
            "cutover.params.metric_error_query",
            r#"errors{app="{app}",version=~"{version}",instance=~"{machines}"}"#,
        )
        .set("cutover.params.metric_window", "5m")
        .set("cutover.params.metric_interval", "15s")
        .write(app.config());
    let out =
        app.cutover(&["deploy", "--platform", "local", "--image", "registry.fly.io/hello-cutover:v1"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());

    let mut child = deploy(&app, "registry.fly.io/hello-cutover:v2").spawn(Stdio::null(), Stdio::null());
    let mut waited = 0;
    while prom.state.windows().len() < 2 {
        waited += 1;
        assert!(waited < 600, "the first step was never judged: {:?}", prom.state.windows());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The judge and its log take milliseconds; the second step's pause takes seconds: kill in it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let first = prom.state.windows();
    assert_eq!(first.len(), 2, "killed during the second step's pause: {first:?}");

    let out = app.cutover(&["resume"]).run_async().await;
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let asked = prom.state.windows();
    assert_eq!(asked.len(), 4, "the second step's two queries, and nothing asked twice: {asked:#?}");
    assert_eq!(&asked[..2], &first[..]);
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "a journaled query was asked again: {asked:#?}");
    // The resumed release's journal holds all four, each with its answer.
    let journaled = range_queries(&app.journal());
    assert_eq!(journaled.len(), 4, "{journaled:#?}");
    assert!(journaled.iter().all(|(_, points)| *points == 21), "{journaled:#?}");
    assert_eq!(app.fleet()["by_version"], serde_json::json!([[2, 3]]));
}

/// A canary deploy on the simulator with `params` set, its metrics from
/// `examples/app/scenarios/canary-metrics-regression.toml` (v2 about 4 points of error ratio above
/// v1), and `extra` config: (exit code, events).
fn on_sim(params: &[(&str, toml::Value)], extra: &str) -> (Option<i32>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        support::root().join("examples/app/scenarios/canary-metrics-regression.toml"),
    )
    .unwrap();
    // The simulator's scenario: the file without its [verify] table, for this app's name.
    let (start, end) = (text.find("[verify]").unwrap(), text.find("[fleet]").unwrap());
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(&scenario, format!("{}{}", &text[..start], &text[end..]).replace("verify-app", APP))
        .unwrap();
    let mut fly =
        Toml::example_app().set("cutover.sim.scenario", &scenario).set("cutover.params.step_pause", "2m");
    for (key, value) in params {
        fly = fly.set(&format!("cutover.params.{key}"), value);
    }
    let config = fly.write(dir.path().join("fly.toml"));
    if !extra.is_empty() {
        let mut all = std::fs::read_to_string(&config).unwrap();
        all.push_str(extra);
        std::fs::write(&config, all).unwrap();
    }
    let out = support::cutover(["deploy", "--strategy", "canary", "--json"])
        .config(&config)
        .state(dir.path().join("state"))
        .run();
    (out.status.code(), out.json_lines())
}

fn template() -> toml::Value {
    ERROR_QUERY.replace("[4s]", "[30s]").into()
}

fn calls<'a>(events: &'a [Value], call: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |e| e["call"] == call)
}

/// Without a template the canary is what it was: no metrics call at all, on metrics that would fail it.
#[test]
fn without_a_template_the_canary_asks_no_metrics() {
    let (code, events) = on_sim(&[], "");
    assert_eq!(code, Some(0), "{events:#?}");
    assert!(events.iter().all(|e| !e["call"].as_str().unwrap_or_default().starts_with("metrics.")));
}

/// A significant shift below `metric_error_min_effect` is `marginal`: a warning, and the canary goes on.
#[test]
fn a_marginal_verdict_is_a_warning_and_the_canary_goes_on() {
    let (code, events) =
        on_sim(&[("metric_error_query", template()), ("metric_error_min_effect", 0.1.into())], "");
    assert_eq!(code, Some(0), "{events:#?}");
    let warned: Vec<&str> = calls(&events, "runtime.log")
        .filter(|e| e["level"] == "warn")
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.contains("error ratio over 2m: marginal"))
        .collect();
    assert_eq!(warned.len(), 3, "one warning per step: {warned:#?}");
    assert!(warned[0].contains("a difference within the tolerance, going on"), "{}", warned[0]);
    assert_eq!(calls(&events, "metrics.judge").count(), 3);
}

/// A policy that denies the canary its queries fails the first step safely: `denied`, naming the
/// query, and the fleet left on v1.
#[test]
fn a_canary_denied_its_queries_fails_the_step_safely() {
    let policy = "\n[[cutover.sandbox]]\nstrategy = \"canary\"\ndeny = [\"metrics.*\"]\n";
    let (code, events) = on_sim(&[("metric_error_query", template())], policy);
    assert_eq!(code, Some(1), "{events:#?}");
    let end = events.last().unwrap();
    let error = end["error"].as_str().unwrap();
    assert!(
        error.contains(
            "reported: denied: canary gate failed at step 1/3 (10%): error ratio: the canary query `"
        ) && error.contains("the canary was removed"),
        "{error}"
    );
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 6]]), "{end}");
}
