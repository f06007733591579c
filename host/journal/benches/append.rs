//! What the journal costs per host call, on each backend: one release begun, then events appended one
//! at a time as a deploy's sink appends them (an intent and a host call per change), then finished.
//! Prints microseconds per event; PostgreSQL is the tests' private cluster (`.ci/postgres serve`) or
//! `CUTOVER_TEST_POSTGRES_URL`.
//!
//!     cargo bench -p cutover-journal --bench append

use cutover_core::Release;
use cutover_core::events::{Event, EventKind, HostCall};
use cutover_journal::{Journal, NewRelease, ReleaseKind};
use std::time::{Duration, Instant};

/// Events per run (a 1,000-machine rolling deploy journals about this many).
const EVENTS: u64 = 5_000;

fn run(name: &str, journal: &Journal) {
    let target = Release { version: 2, image: "img:v2".into() };
    let begun = Instant::now();
    let id = journal
        .begin(&NewRelease {
            app: "bench",
            kind: ReleaseKind::Deploy,
            target: &target,
            previous: None,
            strategy: "rolling",
            strategy_hash: "00",
            params: serde_json::Value::Null,
            platform: "sim",
            plan: None,
            strategy_ref: None,
        })
        .unwrap();
    let begin = begun.elapsed();
    let ids: Vec<String> = (0..8).map(|i| format!("machine-{i:04}")).collect();
    let started = Instant::now();
    for seq in 0..EVENTS {
        let call = HostCall::Update { ids: ids.clone(), target: target.clone() };
        journal.append(id, &Event { seq, at_ms: seq, kind: EventKind::Intent { call } }).unwrap();
    }
    let appends = started.elapsed();
    journal.finish(id, true, None, Duration::ZERO).unwrap();
    println!(
        "{name:<10} begin {:>7.2} ms   append {:>6.1} µs/event ({EVENTS} events in {:.2} s)",
        begin.as_secs_f64() * 1e3,
        appends.as_secs_f64() * 1e6 / EVENTS as f64,
        appends.as_secs_f64()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    run("sqlite", &Journal::open(dir.path()).unwrap());
    match cutover_journal::testing::database("bench_append") {
        Some(url) => run("postgres", &Journal::connect(&url).unwrap()),
        None => println!("postgres   skipped (no PostgreSQL on this machine)"),
    }
}
