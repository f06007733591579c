//! Bounded compilation: a component file over the size bound is refused, with its own error, before it
//! is read or compiled, by `deploy`, `verify` and `inspect` alike.

use crate::support::{self, OutputExt};

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
