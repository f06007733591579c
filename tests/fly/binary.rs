//! The `cutover` binary on the fake: a dry run only reads, and the token appears in no output, log,
//! error, event or journal.

use super::{APP, TOKEN, V1, app, app_dir, fake_with_fleet, machines_of};
use crate::support::{self, Cutover, OutputExt};

use std::path::{Path, PathBuf};

/// `cutover ARGS` for the app in `dir` (its fly.toml, its state) with `token` as the Fly token, and
/// no Machines API URL from the environment.
pub(super) fn with_token(dir: &Path, args: &[&str], token: &str) -> Cutover {
    support::cutover(args)
        .config(dir.join("fly.toml"))
        .state(dir.join("state"))
        .env("FLY_API_TOKEN", token)
        .env_remove("FLY_FLAPS_BASE_URL")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_only_reads_and_says_what_fly_lacks() {
    let fake = fake_with_fleet(3).await;
    let dir = app_dir(app(&fake.url, "canary"));
    let out = with_token(dir.path(), &["deploy", "--dry-run"], TOKEN).run_async().await;
    let stdout = out.stdout_text();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", out.stderr_text());
    for expected in [
        "Dry run",
        "flyapp on fly",
        "v1 (registry.fly.io/flyapp:deployment-1) -> v2",
        "canary",
        "ams",
        "iad",
        "weights",
        "stats",
        "connections",
        "leased before the first change",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let seen = fake.state.seen();
    assert!(!seen.is_empty() && seen.iter().all(|s| s.method == "GET"), "only GETs: {seen:?}");
    let out = with_token(dir.path(), &["deploy", "--dry-run", "--json"], TOKEN).run_async().await;
    let plan: serde_json::Value = out.json();
    assert_eq!(plan["target"]["version"], 2);
    assert_eq!(plan["groups"]["app"]["ams"]["machines"], 2);
    assert!(fake.state.seen().iter().all(|s| s.method == "GET"));
    assert!(machines_of(&fake, APP).iter().all(|m| m.api.config.image == V1));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_appears_in_any_output_log_error_or_event() {
    let fake = fake_with_fleet(2).await;
    let dir = app_dir(app(&fake.url, "rolling"));
    let path = dir.path().to_path_buf();
    let runs = [
        (vec!["deploy", "--json", "-vv"], TOKEN),
        (vec!["deploy", "-vv"], TOKEN),
        (vec!["deploy", "--dry-run", "-vv"], TOKEN),
        (vec!["releases", "--json"], TOKEN),
        // A refused token: the error names what to do, not the token.
        (vec!["deploy", "--json", "-vv"], "fo1_ZZrefusedTOKENzz"),
        (vec!["deploy", "-vv"], "fo1_ZZrefusedTOKENzz"),
    ];
    for (args, token) in runs {
        let out = with_token(&path, &args, token).run_async().await;
        let all = out.text();
        assert!(!all.contains(token), "{args:?} printed the token:\n{all}");
        assert!(!all.contains("ZZtoken") && !all.contains("ZZrefused"), "{args:?}:\n{all}");
        if token != TOKEN {
            assert_eq!(out.status.code(), Some(3), "{args:?}: {all}");
            assert!(all.contains("FLY_API_TOKEN"), "{args:?}: says what to do: {all}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        }
    }
    // Nor in anything kept on disk (the journal).
    for entry in walk(&path.join("state")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("ZZtoken") && !text.contains("ZZrefused"),
            "{} holds the token",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
