//! The canary's metric gate on Fly: the fake Machines API for the fleet, a fake Prometheus
//! (`support::fake_prometheus`) for the metrics. Every machine passes its checks in every run, so
//! what stops a canary here is the judge alone.

use super::{APP, V1, V2, app, app_dir, deploy, fake_with_fleet, machines_of};
use crate::support::fake_prometheus::FakePrometheus;

use cutover::core::events::{EventKind, HostCall, HostReply, Outcome};

/// The error-ratio template: the fake selects series by the `version` matcher.
const ERROR_QUERY: &str =
    r#"sum(rate(errors_total{app="{app}",version=~"{version}",instance=~"{machines}"}[1m]))"#;

/// APP on the fake at `fly`, canary with the error-ratio gate, metrics from `prom`.
fn dir(fly: &str, prom: &str) -> tempfile::TempDir {
    app_dir(
        app(fly, "canary")
            .set("cutover.metrics.url", prom)
            .set("cutover.metrics.timeout", "5s")
            .set("cutover.params.metric_error_query", ERROR_QUERY)
            .set("cutover.params.metric_window", "5m")
            .set("cutover.params.metric_interval", "15s"),
    )
}

/// Stable's error ratio about 1%, with some spread.
const STABLE: [f64; 7] = [0.010, 0.012, 0.008, 0.011, 0.009, 0.013, 0.010];

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_with_worse_metrics_is_stopped_although_every_check_passes() {
    let fake = fake_with_fleet(4).await;
    let prom = FakePrometheus::start().await;
    prom.state.set("1", &STABLE);
    prom.state.set("2", &[0.050, 0.061, 0.045, 0.055, 0.052, 0.048]);
    let dir = dir(&fake.url, &prom.url);
    let (report, events) = deploy(&dir).await;
    let report = report.expect("the deploy ran");
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains(
            "canary gate failed at step 1/1 (50%): the metric judge failed the canary on error ratio"
        ) && error.contains(r#"canary query `sum(rate(errors_total{app="flyapp",version=~"2",instance=~""#)
            && error.contains("the canary was removed"),
        "{error}"
    );
    // Back where it started: four machines on v1, serving, nothing cordoned; the canary gone.
    let machines = machines_of(&fake, APP);
    assert_eq!(machines.len(), 4, "{machines:?}");
    assert!(machines.iter().all(|m| m.api.config.image == V1 && m.api.state == "started" && !m.api.cordoned));
    // Both sides were asked for the step's window, and the answers are in the event log.
    let asked = prom.state.asked();
    assert!(asked.iter().any(|(e, q)| e == "query_range" && q.contains(r#"version=~"2""#)), "{asked:?}");
    assert!(asked.iter().any(|(e, q)| e == "query_range" && q.contains(r#"version=~"1""#)), "{asked:?}");
    let answered = events
        .events()
        .into_iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::HostCall { call: HostCall::MetricsRange { .. }, reply: HostReply::Series(s), .. }
                if !s.is_empty() && s[0].points.len() == 21)
        })
        .count();
    assert_eq!(answered, 2, "canary and stable, 21 points each (5m every 15s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_with_metrics_like_stable_succeeds() {
    let fake = fake_with_fleet(4).await;
    let prom = FakePrometheus::start().await;
    prom.state.set("1", &STABLE);
    prom.state.set("2", &[0.011, 0.009, 0.012, 0.010, 0.008, 0.013, 0.010]);
    let (report, _) = deploy(&dir(&fake.url, &prom.url)).await;
    let report = report.expect("the deploy ran");
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.error);
    let machines = machines_of(&fake, APP);
    assert_eq!(machines.len(), 4, "the canary is gone: {machines:?}");
    assert!(machines.iter().all(|m| m.api.config.image == V2));
    assert!(!prom.state.asked().is_empty());
}

/// A query the server refuses fails the step safely: traffic back, canary removed, the error names
/// the query and the server's reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_query_fails_the_canary_safely() {
    let fake = fake_with_fleet(4).await;
    let prom = FakePrometheus::start().await;
    prom.state.refuse(true);
    let (report, _) = deploy(&dir(&fake.url, &prom.url)).await;
    let report = report.expect("the deploy ran");
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("reported: invalid: canary gate failed at step 1/1 (50%): error ratio: the canary query `sum(rate(errors_total{")
            && error.contains("` failed: the metrics server refused the query")
            && error.contains("refused by the fake")
            && error.contains("the canary was removed"),
        "{error}"
    );
    let machines = machines_of(&fake, APP);
    assert_eq!(machines.len(), 4);
    assert!(machines.iter().all(|m| m.api.config.image == V1 && !m.api.cordoned));
}

/// Nothing to compare is no pass: a release the server has no series for fails the step.
#[tokio::test(flavor = "multi_thread")]
async fn no_samples_for_the_canary_fail_the_step() {
    let fake = fake_with_fleet(4).await;
    let prom = FakePrometheus::start().await;
    prom.state.set("1", &STABLE);
    let (report, _) = deploy(&dir(&fake.url, &prom.url)).await;
    let report = report.expect("the deploy ran");
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("returned no samples over the last 5m"), "{error}");
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
}
