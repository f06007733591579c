//! Bad input exits 2 and says which file, which key and what was expected; unknown keys only warn.
//! These tests write their fly.toml as text on purpose: the text is what is under test.

use crate::support::{self, OutputExt};

/// Write a fly.toml into a temp dir and deploy it; returns (exit code, stderr).
fn deploy_config(fly: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fly.toml");
    std::fs::write(&path, fly).unwrap();
    let mut args = vec!["deploy", "--config", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = support::cutover(&args).run();
    (out.status.code(), out.stderr_text())
}

#[test]
fn wrong_type_in_fly_toml_exits_2_naming_file_and_key() {
    let (code, err) =
        deploy_config("app = \"a\"\n[build]\nimage = \"x\"\n[deploy]\nmax_unavailable = \"lots\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("fly.toml") && err.contains("deploy.max_unavailable"), "{err}");
    assert!(err.contains("expected a count >= 1 or a fraction"), "{err}");
    assert!(err.contains("nothing was changed") || err.contains("error:"), "{err}");
}

#[test]
fn unknown_strategy_exits_2_listing_the_built_ins() {
    let (code, err) =
        deploy_config("app = \"a\"\n[build]\nimage = \"x\"\n[deploy]\nstrategy = \"bluegren\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown strategy `bluegren`") && err.contains("rolling"), "{err}");
}

#[test]
fn strategy_param_of_the_wrong_kind_exits_2() {
    let (code, err) =
        deploy_config("app = \"a\"\n[build]\nimage = \"x\"\n[cutover.params]\nretries = \"often\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cutover.params.retries") && err.contains("expected an integer"), "{err}");
}

#[test]
fn unknown_keys_warn_but_deploy() {
    let (code, err) = deploy_config("app = \"a\"\nmystery = 1\n[build]\nimage = \"x\"\n", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning:") && err.contains("unknown key `mystery`"), "{err}");
}

#[test]
fn missing_image_exits_2_with_advice() {
    let (code, err) = deploy_config("app = \"a\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--image"), "{err}");
}

#[test]
fn missing_config_exits_2_with_a_hint() {
    let out = support::cutover(["deploy", "--config", "/nonexistent/fly.toml"]).run();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr_text().contains("cannot read /nonexistent/fly.toml"));
}
