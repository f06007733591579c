//! Bounded compilation: a component file over the size bound is refused, with its own error, before it
//! is read or compiled, by `deploy`, `verify` and `inspect` alike.

use crate::support::{self, OutputExt, Toml};

#[test]
fn an_oversized_component_is_refused_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    // Sparse: 300 MiB on paper, nothing on disk; a command that read it whole would still take seconds.
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(300 << 20).unwrap();
    let path = big.display().to_string();
    let example = support::root().join("examples/app/fly.toml").display().to_string();
    for args in [
        vec!["inspect", &path],
        vec!["verify", &path],
        vec![
            "deploy",
            "--config",
            &example,
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--strategy",
            &path,
        ],
    ] {
        let out = support::cutover(&args).run();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.text());
        let t = out.text();
        assert!(t.contains(&path) && t.contains("300 MiB, over the 256 MiB"), "{args:?}: {t}");
        assert!(t.contains("not compiled"), "{args:?}: {t}");
    }
}

/// A component (WebAssembly text, which the runtime reads as it reads binary) whose one function is
/// pathological for the compiler: 20,000 branches in a loop over 2,000 locals, every local live on
/// every edge. Cranelift spends minutes on it; nothing about it is invalid.
fn pathological() -> String {
    let locals = 2000;
    let mut wat =
        String::from("(component (core module (func (export \"f\") (param i64) (result i64)\n(local");
    wat.push_str(&" i64".repeat(locals));
    wat.push_str(")\n(loop $top\n");
    for b in 0..20_000 {
        let (i, j) = (b % locals + 1, (b * 7 + 1) % locals + 1);
        wat.push_str(&format!(
            "(block (br_if 0 (i64.eqz (local.get 0))) (local.set {i} (i64.add (local.get {j}) (local.get 0))))\n"
        ));
    }
    wat.push_str("(br_if $top (i64.ne (local.get 0) (local.get 1))))\n(local.get 2))))\n");
    wat
}

#[test]
fn a_compile_past_its_deadline_is_stopped_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.wasm");
    std::fs::write(&huge, pathological()).unwrap();
    let path = huge.display().to_string();
    let cache = dir.path().join("cache");
    let deadline_said = |t: &str, shown: &str| {
        t.contains(&path)
            && t.contains(&format!("longer than the compile deadline of {shown}"))
            && t.contains("compiler was stopped")
            && t.contains("[cutover.limits] compile_timeout")
    };
    // The flag (inspect), the environment (verify), the config (deploy).
    let out = support::cutover(["inspect", &path, "--compile-timeout", "2s"])
        .env("CUTOVER_CACHE_DIR", &cache)
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(deadline_said(&out.text(), "2s"), "{}", out.text());
    let out = support::cutover(["verify", &path])
        .env("CUTOVER_COMPILE_TIMEOUT", "1500ms")
        .env("CUTOVER_CACHE_DIR", &cache)
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(deadline_said(&out.text(), "1500ms"), "{}", out.text());
    let config =
        Toml::example_app().set("cutover.limits.compile_timeout", "2s").write(dir.path().join("fly.toml"));
    let out = support::cutover(["deploy", "--strategy", &path])
        .config(config)
        .state(dir.path().join("state"))
        .env("CUTOVER_CACHE_DIR", &cache)
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(deadline_said(&out.text(), "2s"), "{}", out.text());
    // Nothing was cached: the next load would compile (and be stopped) again.
    let cached = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 0, "a stopped compile left an artifact in the cache");
}

#[test]
fn a_normal_component_compiles_under_the_deadline_and_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    support::guest("flood");
    let flood = support::guest_target().join("wasm32-wasip2/release/flood.wasm");
    let cache = dir.path().join("cache");
    for _ in 0..2 {
        // The first load compiles in a child under the deadline; the second maps the cached artifact.
        let out = support::cutover(["inspect", "--compile-timeout", "60s"])
            .arg(&flood)
            .env("CUTOVER_CACHE_DIR", &cache)
            .run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        assert!(out.stdout_text().contains("flood"), "{}", out.text());
    }
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1, "the compiled artifact is cached");
}
