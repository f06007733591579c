//! Bounded strategies: a guest that floods the host with calls (cheap ones, or platform reads) is
//! stopped by the host-call limit or by the journal's bound, each with its own error, and the journal
//! stays under the bound on disk.

use crate::support::{self, OutputExt, Toml};

use cutover::verify::{self, Invariant, Options, RunOutcome};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn flood() -> PathBuf {
    support::guest("flood");
    support::guest_target().join("wasm32-wasip2/release/flood.wasm")
}

/// Bytes of the journal on disk: the database and what its write-ahead log still holds.
fn journal_size(state: &Path) -> u64 {
    ["journal.db", "journal.db-wal", "journal.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Deploy the flood guest on the simulator with `limits` set; (exit code, the closing event, state).
fn deploy_flood(call: &str, limits: &[(&str, u64)]) -> (Option<i32>, Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut fly = Toml::example_app().set("cutover.params.call", call);
    for (k, v) in limits {
        fly = fly.set(&format!("cutover.limits.{k}"), *v);
    }
    let config = fly.write(dir.path().join("fly.toml"));
    let out = support::cutover(["deploy", "--json", "--strategy"])
        .arg(flood())
        .config(config)
        .state(dir.path().join("state"))
        .run();
    let end = out
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "deploy_finished")
        .unwrap_or_else(|| panic!("no closing event: {}", out.text()));
    (out.status.code(), end, dir)
}

#[test]
fn a_flood_of_cheap_calls_is_stopped_by_the_host_call_limit() {
    let (code, end, dir) = deploy_flood("now", &[("host_calls", 20_000), ("journal_mb", 64)]);
    assert_eq!(code, Some(1), "{end:#}");
    assert_eq!(end["outcome"], "failed");
    let error = end["error"].as_str().unwrap();
    assert!(error.contains("host-call limit") && error.contains("20000 host calls"), "{error}");
    assert!(error.contains("[cutover.limits] host_calls"), "{error}");
    // The fleet is as recorded: untouched, and all serving.
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10]]), "{end:#}");
    let status = support::cutover(["status", "--json"])
        .config(dir.path().join("fly.toml"))
        .state(dir.path().join("state"))
        .run();
    assert_eq!(status.status.code(), Some(0), "{}", status.text());
    assert!(status.stdout_text().contains("host-call limit"), "{}", status.text());
}

#[test]
fn a_flood_of_reads_is_stopped_by_the_journal_bound_and_the_journal_stays_under_it() {
    let bound_mb = 2;
    let (code, end, dir) = deploy_flood("get", &[("journal_mb", bound_mb)]);
    assert_eq!(code, Some(1), "{end:#}");
    let error = end["error"].as_str().unwrap();
    assert!(error.contains("journal limit") && error.contains("[cutover.limits] journal_mb"), "{error}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 10]]), "{end:#}");
    let size = journal_size(&dir.path().join("state"));
    assert!(size > 0);
    assert!(size <= bound_mb << 20, "the journal takes {size} bytes, over its bound of {bound_mb} MiB");
}

/// `cutover verify` reports a flood as the host-call limit a deploy would hit (a low limit here, so
/// the eleven scenarios take seconds).
#[tokio::test(start_paused = true)]
async fn verify_reports_a_flood_as_the_host_call_limit() {
    let runtime = support::runtime();
    let flood = runtime.load(&support::guest("flood")).unwrap();
    let info = runtime.describe(&flood).await.unwrap();
    let mut opts = Options::default();
    opts.limits.host_calls = 5_000;
    let report = verify::verify(&runtime, &flood, &info, &opts).await.unwrap();
    assert!(!report.passed());
    assert_eq!(report.broken(), [Invariant::Sandbox]);
    for s in &report.scenarios {
        assert!(
            matches!(&s.outcome, RunOutcome::Stopped(e) if e.contains("host-call limit") && e.contains("5000")),
            "{}: {:?}",
            s.name,
            s.outcome
        );
    }
}
