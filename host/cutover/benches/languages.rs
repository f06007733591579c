//! Warm start and size of a strategy in each language a user can write one in.
//!
//! Warm start is what a `cutover` process pays for a strategy it has compiled before: the compiled
//! artifact read from the disk cache, deserialized, checked against the contract, pre-linked,
//! instantiated, and its first call (`describe`) answered. Cold start (compiling the component) is
//! paid once per component and machine, so the cache is what users feel. Targets (issue 5): Rust under
//! 0.5 ms, Python and JavaScript under 20 ms.
//!
//! The components: the built-in `rolling` (Rust, on the SDK), and the two examples in Python and
//! JavaScript as `tests/examples_polyglot.rs` builds them into target/polyglot-components/ (run that
//! test first: `sdk/setup && cargo test -p cutover --test examples_polyglot`; the bench says so if they
//! are missing). Each is measured in its own round of `ROUNDS` loads, medians reported.
//!
//! Run: `cargo bench -p cutover --bench languages`.

#[path = "../../../tests/support/mod.rs"]
mod support;

use cutover::runtime::{ComponentCache, Origin, Runtime};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROUNDS: usize = 30;

/// The newest build of the component named `name` (its manifest's name) in target/polyglot-components.
fn polyglot(name: &str) -> Vec<u8> {
    let dir = support::root().join("target/polyglot-components");
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}-"))))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    let path: PathBuf = newest.unwrap_or_else(|| {
        panic!(
            "no build of {name} in {}: run `sdk/setup && cargo test -p cutover --test examples_polyglot` first",
            dir.display()
        )
    });
    std::fs::read(&path).unwrap()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let components: Vec<(&str, &str, Vec<u8>)> = vec![
        ("Rust", "rolling (built-in)", support::builtin("rolling").to_vec()),
        ("Python", "python-region-by-region", polyglot("region-by-region")),
        ("JavaScript", "js-manual-split", polyglot("manual-split")),
    ];
    let rt = support::paused_runtime();
    println!(
        "{:<11} {:<25} {:>9} {:>11} {:>12} {:>13}",
        "language", "component", "size", "cold", "warm start", "instantiate"
    );
    for (lang, name, bytes) in &components {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(ComponentCache::at(dir.path())).unwrap();
        let started = Instant::now();
        runtime.load(bytes).unwrap();
        let cold = started.elapsed();

        let warm = median(
            (0..ROUNDS)
                .map(|_| {
                    runtime.forget_loaded();
                    let t = Instant::now();
                    let s = runtime.load(bytes).unwrap();
                    assert_eq!(s.origin, Origin::DiskCache);
                    rt.block_on(runtime.describe(&s)).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        let loaded = runtime.load(bytes).unwrap();
        let instantiate = median(
            (0..ROUNDS)
                .map(|_| {
                    let t = Instant::now();
                    rt.block_on(runtime.describe(&loaded)).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "{lang:<11} {name:<25} {:>6.1} MB {:>9.2} s {:>12} {:>13}",
            bytes.len() as f64 / 1e6,
            cold.as_secs_f64(),
            ms(warm),
            ms(instantiate)
        );
    }
}
